class Product < ApplicationRecord
  CATEGORIES = %w[books garden kitchen music office outdoor tools toys].freeze

  has_many :line_items

  # Case-insensitive substring search on name, sku and category (SQLite LIKE).
  def self.search(query)
    pattern = "%#{sanitize_sql_like(query.to_s.strip)}%"
    where("name LIKE :p OR sku LIKE :p OR category LIKE :p", p: pattern)
  end
end
