class CreateShop < ActiveRecord::Migration[6.1]
  def change
    create_table :customers do |t|
      t.string :name, null: false
      t.string :email, null: false, index: { unique: true }
      t.string :city, null: false
      t.timestamps
    end

    create_table :products do |t|
      t.string :name, null: false
      t.string :sku, null: false, index: { unique: true }
      t.string :category, null: false, index: true
      t.text :description, null: false
      t.integer :price_cents, null: false
      t.integer :stock, null: false
      t.timestamps
    end

    create_table :orders do |t|
      t.references :customer, null: false, foreign_key: true
      t.string :status, null: false, index: true
      t.integer :total_cents, null: false
      t.datetime :placed_at, null: false, index: true
      t.timestamps
    end

    create_table :line_items do |t|
      t.references :order, null: false, foreign_key: true
      t.references :product, null: false, foreign_key: true
      t.integer :quantity, null: false
      t.integer :unit_price_cents, null: false
      t.timestamps
    end
  end
end
