class DashboardController < ApplicationController
  # Aggregates over all orders; recomputed at most every 10 s per process (low-level cache).
  def show
    @stats = Rails.cache.fetch("dashboard/stats/v1", expires_in: 10.seconds) do
      {
        counts: { customers: Customer.count, products: Product.count, orders: Order.count },
        revenue_cents: Order.where.not(status: "cancelled").sum(:total_cents),
        orders_by_status: Order.group(:status).order(:status).count,
        revenue_by_category: LineItem.joins(:product).group("products.category")
                                     .order("products.category")
                                     .sum("line_items.quantity * line_items.unit_price_cents"),
        revenue_by_month: Order.where.not(status: "cancelled")
                               .group("strftime('%Y-%m', placed_at)").order(Arel.sql("1"))
                               .sum(:total_cents),
        top_products: Product.joins(:line_items).group("products.id")
                             .order(Arel.sql("SUM(line_items.quantity) DESC"), "products.id")
                             .limit(10)
                             .pluck("products.id", "products.name", "SUM(line_items.quantity)")
      }
    end
  end
end
