class ProductsController < ApplicationController
  def index
    @total_pages = (Product.count + PER_PAGE - 1) / PER_PAGE
    @page = page_param(@total_pages)
    @products = Product.order(:id).limit(PER_PAGE).offset((@page - 1) * PER_PAGE)
  end

  def show
    @product = Product.find(params[:id])
    @recent_items = @product.line_items.includes(order: :customer)
                            .order(created_at: :desc).limit(10)
    @related = Product.where(category: @product.category).where.not(id: @product.id)
                      .order(:price_cents).limit(5)
  end
end
