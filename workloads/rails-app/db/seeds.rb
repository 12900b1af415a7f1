# Deterministic seed data: the same rows on every machine (fixed random seed, fixed clock).
# Sizes are in SEED_SIZES; the load mix (load-mix.toml) draws ids from these ranges.
# Run by ./setup only when the database is empty; `./setup --reset-db` starts over.

SEED_SIZES = { customers: 1_000, products: 2_000, orders: 5_000 }.freeze
MAX_ITEMS_PER_ORDER = 6

if Product.exists?
  puts "db/seeds.rb: database already seeded (#{Product.count} products), nothing to do"
  return
end

rng = Random.new(20_240_101)
epoch = Time.utc(2024, 1, 1)

first = %w[Ada Alan Barbara Claude Donald Edsger Frances Grace Hedy John Katherine Ken Linus
           Margaret Niklaus Radia Dennis Shafi Sophie Tim Vint Whitfield Yukihiro Leslie]
last = %w[Lovelace Turing Liskov Shannon Knuth Dijkstra Allen Hopper Lamarr McCarthy Johnson
          Thompson Torvalds Hamilton Wirth Perlman Ritchie Goldwasser Wilson Berners-Lee Cerf
          Diffie Matsumoto Lamport]
cities = %w[Amsterdam Berlin Cairo Dublin Edinburgh Florence Geneva Helsinki Istanbul Jakarta
            Kyoto Lisbon Madrid Nairobi Oslo Prague Quito Riga Seoul Toronto]
adjectives = %w[compact sturdy quiet bright modular classic deluxe portable rustic sleek
                vintage rugged gentle smart solid folding heavy light electric wooden]
nouns = { "books" => %w[novel atlas cookbook anthology journal guide],
          "garden" => %w[trowel planter hose rake shears sprinkler],
          "kitchen" => %w[kettle skillet grater whisk teapot blender],
          "music" => %w[ukulele metronome capo harmonica tambourine drumkit],
          "office" => %w[stapler notebook lamp binder chair whiteboard],
          "outdoor" => %w[tent lantern backpack hammock compass stove],
          "tools" => %w[hammer wrench chisel level drill saw],
          "toys" => %w[kite puzzle robot yo-yo train marble] }
words = %w[made of recycled steel and oak with a lifetime warranty designed for daily use
           easy to clean ships in plain packaging hand finished tested in our workshop
           suitable for beginners and experts alike includes spare parts and a manual]

sentence = lambda do
  s = Array.new(rng.rand(8..16)) { words[rng.rand(words.size)] }.join(" ")
  s[0].upcase + s[1..] + "."
end

stamp = ->(t) { { created_at: t, updated_at: t } }

ActiveRecord::Base.transaction do
  customers = (1..SEED_SIZES[:customers]).map do |i|
    f = first[rng.rand(first.size)]
    l = last[rng.rand(last.size)]
    { id: i, name: "#{f} #{l}", email: "#{f}.#{l}.#{i}@example.test".downcase,
      city: cities[rng.rand(cities.size)] }.merge(stamp.(epoch + i * 60))
  end
  Customer.insert_all!(customers)

  products = (1..SEED_SIZES[:products]).map do |i|
    category = Product::CATEGORIES[rng.rand(Product::CATEGORIES.size)]
    noun = nouns[category][rng.rand(nouns[category].size)]
    { id: i, name: "#{adjectives[rng.rand(adjectives.size)].capitalize} #{noun} #{i}",
      sku: format("%s-%05d", category[0, 3].upcase, i), category: category,
      description: Array.new(rng.rand(2..6)) { sentence.() }.join(" "),
      price_cents: rng.rand(199..49_999), stock: rng.rand(0..500) }.merge(stamp.(epoch + i * 30))
  end
  Product.insert_all!(products)
  prices = products.to_h { |p| [p[:id], p[:price_cents]] }

  line_item_id = 0
  SEED_SIZES[:orders].times.each_slice(1_000) do |slice|
    orders = []
    items = []
    slice.each do |n|
      id = n + 1
      placed = epoch + id * 3_600 + rng.rand(3_600)
      total = 0
      rng.rand(1..MAX_ITEMS_PER_ORDER).times do
        product_id = rng.rand(1..SEED_SIZES[:products])
        quantity = rng.rand(1..4)
        total += quantity * prices[product_id]
        line_item_id += 1
        items << { id: line_item_id, order_id: id, product_id: product_id, quantity: quantity,
                   unit_price_cents: prices[product_id] }.merge(stamp.(placed))
      end
      orders << { id: id, customer_id: rng.rand(1..SEED_SIZES[:customers]),
                  status: Order::STATUSES[rng.rand(Order::STATUSES.size)],
                  total_cents: total, placed_at: placed }.merge(stamp.(placed))
    end
    Order.insert_all!(orders)
    LineItem.insert_all!(items)
  end
end

puts "db/seeds.rb: seeded #{Customer.count} customers, #{Product.count} products, " \
     "#{Order.count} orders, #{LineItem.count} line items"
