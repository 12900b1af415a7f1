# Long Ruby stress for an allocator under LD_PRELOAD: threads that start and exit, strings,
# arrays and hashes grown by appending (realloc), objects handed between threads (frees on
# other threads' blocks at GC), GC.start and GC.compact now and then. Runs for ARGV[0] seconds
# (default 10); checks the data it keeps; prints "ok <rounds>".
secs = (ARGV[0] || "10").to_i
deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + secs
shared = Queue.new
rounds = 0
while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
  threads = 6.times.map do |t|
    Thread.new do
      keep = []
      s = +""
      h = {}
      3000.times do |i|
        s << ("k#{i}" * (1 + i % 7))
        h["#{t}-#{i}"] = [i, i.to_s * (i % 13)]
        keep << ("x" * (i % 3000)) if i % 5 == 0
        shared << keep.shift(10) if keep.size > 200
        s = +"" if s.bytesize > 200_000
      end
      raise "hash broken" unless h["#{t}-2999"][0] == 2999
      keep.size
    end
  end
  threads.each(&:join)
  drained = 0
  until shared.empty?
    batch = shared.pop
    batch.each { |x| raise "string broken" unless x.empty? || x[0] == "x" }
    drained += 1
  end
  GC.start if rounds % 3 == 0
  GC.compact if rounds % 10 == 9 && GC.respond_to?(:compact)
  rounds += 1
end
raise "preload not loaded" unless File.read("/proc/self/maps").include?("liblhalloc_preload")
puts "ok #{rounds}"
