class CustomersController < ApplicationController
  def show
    @customer = Customer.find(params[:id])
    @orders = @customer.orders.includes(line_items: :product).order(placed_at: :desc).limit(20)
  end
end
