# Puma for the longhaul live runs. Normally started by ./serve, which sets the environment.
#
#   PORT               TCP port on 127.0.0.1 (default 3000)
#   RAILS_MAX_THREADS  threads per process, min = max (default 5; ./serve also accepts PUMA_THREADS)
#   WEB_CONCURRENCY    0 or unset: single mode; N >= 1: cluster mode, N forked workers, preload_app!
#
# SIGTERM and SIGINT stop the server: Puma stops accepting, finishes requests in flight
# and exits (in cluster mode the master stops its workers first).

def positive_int(name, default, min: 1)
  raw = ENV.fetch(name, default.to_s)
  value = Integer(raw, 10) rescue nil
  unless value && value >= min
    abort "config/puma.rb: #{name}=#{raw.inspect} is not an integer >= #{min}; " \
          "unset it or set e.g. #{name}=#{default}"
  end
  value
end

threads_count = positive_int("RAILS_MAX_THREADS", 5)
port = positive_int("PORT", 3000)
workers_count = positive_int("WEB_CONCURRENCY", 0, min: 0)

abort "config/puma.rb: PORT=#{port} is not a TCP port (1-65535)" if port > 65_535

environment ENV.fetch("RAILS_ENV", "production")
threads threads_count, threads_count
bind "tcp://127.0.0.1:#{port}"

# Exit with status 0 after a graceful stop on SIGTERM (Puma 5's default re-raises SIGTERM).
raise_exception_on_sigterm false

if workers_count > 0
  workers workers_count
  preload_app!
  # The master loaded the app (and may have opened the database); each worker opens its own.
  before_fork { ActiveRecord::Base.connection_pool.disconnect! }
  worker_shutdown_timeout 5
end
