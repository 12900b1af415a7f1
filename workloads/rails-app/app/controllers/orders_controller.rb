class OrdersController < ApplicationController
  def show
    @order = Order.includes(:customer, line_items: :product).find(params[:id])
  end
end
