Rails.application.routes.draw do
  # Readiness: answers once the app is booted and the database opens (no view, no session).
  get "/health", to: lambda { |_env|
    ActiveRecord::Base.connection_pool.with_connection { |c| c.select_value("SELECT 1") }
    [200, { "Content-Type" => "text/plain", "Cache-Control" => "no-store" }, ["ok\n"]]
  }

  # HTML pages
  root "dashboard#show"
  get "/dashboard", to: "dashboard#show"
  resources :products, only: %i[index show]
  resources :orders, only: %i[show]
  resources :customers, only: %i[show]

  # The occasional heavy request: every order line as CSV.
  get "/exports/orders.csv", to: "exports#orders", as: :orders_export

  # JSON API
  namespace :api, defaults: { format: :json } do
    resources :products, only: %i[index show] do
      get :search, on: :collection
      post :restock, on: :member
    end
    resources :orders, only: %i[show]
  end
end
