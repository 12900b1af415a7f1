module Api
  class ProductsController < BaseController
    def index
      products = Product.order(:id).limit(PER_PAGE).offset((page_param - 1) * PER_PAGE)
      render json: { page: page_param, products: products.map { |p| summary(p) } }
    end

    # Low-level cache: the JSON document per product version (invalidated by updates).
    def show
      product = Product.find(params[:id])
      body = Rails.cache.fetch([product, "api/v1"]) { detail(product).to_json }
      render json: body
    end

    def search
      query = params.require(:q)
      products = Product.search(query).order(:id).limit(PER_PAGE)
      render json: { query: query, products: products.map { |p| summary(p) } }
    end

    # POST /api/products/:id/restock  {"quantity": 3}
    # One atomic UPDATE (stock + quantity, updated_at bumped), so every call writes, the
    # product's cached fragments and JSON go stale, and the row count never changes.
    def restock
      quantity = Integer(params.require(:quantity).to_s, 10) rescue nil
      unless quantity&.between?(1, 1_000)
        return render json: { error: "quantity must be an integer in 1..1000" },
                      status: :unprocessable_entity
      end
      product = Product.find(params[:id])
      Product.update_counters(product.id, stock: quantity, touch: true)
      render json: summary(product.reload)
    end

    private

    def summary(product)
      product.slice(:id, :name, :sku, :category, :price_cents, :stock)
    end

    def detail(product)
      sold = product.line_items.group(:order_id).sum(:quantity)
      summary(product).merge(
        description: product.description,
        updated_at: product.updated_at,
        orders_count: sold.size,
        units_sold: sold.values.sum,
        recent_orders: product.line_items.order(created_at: :desc).limit(10)
                              .map { |li| li.slice(:order_id, :quantity, :unit_price_cents) }
      )
    end
  end
end
