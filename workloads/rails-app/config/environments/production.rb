# The app runs only in production mode (the setup and serve scripts set RAILS_ENV=production).
require "active_support/core_ext/numeric/bytes"

Rails.application.configure do
  config.cache_classes = true
  config.eager_load = true
  config.consider_all_requests_local = false

  # Fragment and low-level caching into one in-process LRU store per Puma process
  # (Rails' MemoryStore prunes the least recently used entries beyond `size`).
  config.action_controller.perform_caching = true
  config.cache_store = :memory_store, { size: 32.megabytes }

  # No front-end proxy here; the app has no static assets apart from public/*.html.
  config.public_file_server.enabled = false

  # Logs go to stdout (the supervisor captures them), never to log/.
  # RAILS_LOG_LEVEL=info adds one line per request (and its allocations); the default,
  # warn, keeps a loaded server quiet so an undrained pipe cannot stall it.
  config.log_level = ENV.fetch("RAILS_LOG_LEVEL", "warn").to_sym
  config.log_tags = [:request_id]
  config.log_formatter = ::Logger::Formatter.new
  logger = ActiveSupport::Logger.new($stdout)
  logger.formatter = config.log_formatter
  config.logger = ActiveSupport::TaggedLogging.new(logger)

  config.i18n.fallbacks = true
  config.active_support.deprecation = :notify
  config.active_record.dump_schema_after_migration = false
end
