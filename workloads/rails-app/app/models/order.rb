class Order < ApplicationRecord
  STATUSES = %w[pending paid shipped delivered cancelled].freeze

  belongs_to :customer
  has_many :line_items, dependent: :destroy
  has_many :products, through: :line_items
end
