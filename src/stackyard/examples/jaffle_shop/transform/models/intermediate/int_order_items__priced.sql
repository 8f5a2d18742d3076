-- Each order line with its product's price and the cost of the supplies one unit uses up.

with

order_items as (

    select * from {{ ref('stg_dlt__order_items') }}

),

products as (

    select * from {{ ref('stg_dlt__products') }}

),

supplies as (

    select * from {{ ref('stg_dlt__supplies') }}

),

supply_costs as (

    select
        sku,
        sum(supply_cost) as supply_cost

    from supplies

    group by sku

),

priced as (

    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.sku,
        order_items.quantity,

        products.product_name,
        products.product_price,
        products.is_food_item,
        products.is_drink_item,

        -- A product without supplies on file costs nothing to make rather than vanishing.
        coalesce(supply_costs.supply_cost, 0) as supply_cost,
        products.product_price * order_items.quantity as line_subtotal,
        coalesce(supply_costs.supply_cost, 0) * order_items.quantity as line_supply_cost

    from order_items

    left join products
        on order_items.sku = products.sku

    left join supply_costs
        on order_items.sku = supply_costs.sku

)

select * from priced
