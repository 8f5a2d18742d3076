with

products as (

    select * from {{ ref('stg_dlt__products') }}

),

supplies as (

    select * from {{ ref('stg_dlt__supplies') }}

),

order_items as (

    select * from {{ ref('int_order_items__priced') }}

),

orders as (

    select * from {{ ref('stg_dlt__orders') }}

),

product_supplies as (

    select
        sku,
        count(*) as count_supplies,
        sum(supply_cost) as supply_cost,
        sum(case when is_perishable_supply then 1 else 0 end) as count_perishable_supplies

    from supplies

    group by sku

),

product_sales as (

    select
        order_items.sku,
        sum(order_items.quantity) as count_units_sold,
        -- Returned orders were refunded: their units are not sales.
        sum(
            case when orders.status <> 'returned' then order_items.line_subtotal else 0 end
        ) as sales_pretax

    from order_items

    inner join orders
        on order_items.order_id = orders.order_id

    group by order_items.sku

),

joined as (

    select
        products.sku,
        products.product_name,
        products.product_type,
        products.product_description,
        products.product_price,
        products.is_food_item,
        products.is_drink_item,

        coalesce(product_supplies.count_supplies, 0) as count_supplies,
        coalesce(product_supplies.count_perishable_supplies, 0) as count_perishable_supplies,
        coalesce(product_supplies.supply_cost, 0) as supply_cost,
        products.product_price - coalesce(product_supplies.supply_cost, 0) as unit_margin,

        coalesce(product_sales.count_units_sold, 0) as count_units_sold,
        coalesce(product_sales.sales_pretax, 0) as sales_pretax

    from products

    left join product_supplies
        on products.sku = product_supplies.sku

    left join product_sales
        on products.sku = product_sales.sku

)

select * from joined
