# What one request of each kind in load-mix.toml costs inside the app (no HTTP, no Puma, one
# thread): wall time, Ruby objects allocated, and the net growth of malloc'd bytes with GC
# switched off (Ruby's malloc_increase_bytes: bytes malloc'd minus bytes freed explicitly during
# the request). Each kind is sent `runs` times at random ids in its range, after one warm-up
# request; medians are printed. Caches start empty, so most ids are cache misses.
#
#   RAILS_ENV=production SECRET_KEY_BASE=$(cat .secret_key_base) \
#     ruby bin/rails runner script/request-costs.rb [runs]
require "json"
require "open3"

runs = Integer(ARGV.fetch(0, "20"))
mix_file = Rails.root.join("load-mix.toml").to_s
out, status = Open3.capture2("python3", Rails.root.join("script/loadmix.py").to_s, "json", mix_file)
abort "request-costs.rb: reading #{mix_file} failed" unless status.success?

rng = Random.new(1)
call = lambda do |req|
  path = req["path"]
  path = path.gsub("{id}", rng.rand(req["ids"][0]..req["ids"][1]).to_s) if req["ids"]
  env = Rack::MockRequest.env_for(path, method: req["method"], input: req["body"].to_s,
                                        "CONTENT_TYPE" => req["content_type"],
                                        "HTTP_HOST" => "127.0.0.1")
  status, _headers, body = Rails.application.call(env)
  body.each { |_chunk| }
  body.close if body.respond_to?(:close)
  status
end
median = ->(a) { a.sort[a.size / 2] }

printf "%-18s %6s %8s %10s %14s\n", "kind", "status", "ms", "objects", "net malloc B"
JSON.parse(out).each do |req|
  call.(req) # warm-up
  ms = []; objects = []; bytes = []; status = nil
  runs.times do
    GC.start
    GC.disable
    o0 = GC.stat(:total_allocated_objects)
    m0 = GC.stat(:malloc_increase_bytes)
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    status = call.(req)
    ms << (Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0) * 1000
    objects << GC.stat(:total_allocated_objects) - o0
    bytes << GC.stat(:malloc_increase_bytes) - m0
    GC.enable
  end
  printf "%-18s %6d %8.1f %10d %14d\n", req["name"], status, median.(ms), median.(objects), median.(bytes)
end
