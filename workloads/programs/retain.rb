# A multi-threaded Ruby program that allocates and retains, for recording and replaying
# (`runner record -- ruby workloads/programs/retain.rb`). Five threads serve "requests": each
# builds strings, arrays and hashes (garbage for the GC), and keeps some results in a shared
# cache that evicts at random once full, so long-lived blocks sit among short-lived ones: the
# pattern that fragments a malloc heap (see the design notes, `shared/rails-model.md`, "The effect the model
# must reproduce").
#
# Arguments: seconds (default 20) or `N/thread` (a fixed number of requests per thread, for
# timing), threads (default 5), cache entries (default 20000).
limit = ARGV[0] || "20"
per_thread = limit.end_with?("/thread") ? limit.to_i : nil
seconds = per_thread ? Float::INFINITY : limit.to_f
threads = (ARGV[1] || 5).to_i
cache_max = (ARGV[2] || 20_000).to_i

cache = {}
lock = Mutex.new
deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
workers = threads.times.map do |t|
  Thread.new do
    rng = Random.new(t + 1)
    served = 0
    while per_thread ? served < per_thread : Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
      # One request: a body built by appending (realloc growth), rows, a hash.
      body = +""
      rows = []
      (20 + rng.rand(60)).times do |i|
        row = "row #{i} " + ("x" * (30 + rng.rand(400)))
        rows << row
        body << row
      end
      index = {}
      rows.each_with_index { |r, i| index["k#{i}"] = r.bytesize }
      # Keep one result in the cache now and then (1-50 KiB), evicting at random.
      if rng.rand < 0.3
        value = "v" * (1024 + rng.rand(50 * 1024))
        lock.synchronize do
          cache.delete(cache.keys[rng.rand(cache.size)]) if cache.size >= cache_max
          cache["#{t}-#{served}"] = value
        end
      end
      served += 1
      sleep 0.0005 if served % 50 == 0 # an I/O wait now and then
    end
    served
  end
end
total = workers.sum(&:value)
puts "served #{total} requests with #{threads} threads; cache #{cache.size} entries"
