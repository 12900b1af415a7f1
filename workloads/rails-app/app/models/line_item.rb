class LineItem < ApplicationRecord
  belongs_to :order
  belongs_to :product

  def subtotal_cents
    quantity * unit_price_cents
  end
end
