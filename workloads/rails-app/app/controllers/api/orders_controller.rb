module Api
  class OrdersController < BaseController
    def show
      order = Order.includes(:customer, line_items: :product).find(params[:id])
      render json: detail(order)
    end

    private

    def detail(order)
      order.slice(:id, :status, :total_cents, :placed_at).merge(
        customer: order.customer.slice(:id, :name, :email, :city),
        line_items: order.line_items.map do |li|
          li.slice(:product_id, :quantity, :unit_price_cents)
            .merge(sku: li.product.sku, name: li.product.name)
        end
      )
    end
  end
end
