with

orders as (

    select * from {{ ref('stg_dlt__orders') }}

),

order_summaries as (

    select * from {{ ref('int_orders__summarised') }}

),

joined as (

    select
        orders.order_id,
        orders.customer_id,
        orders.store_id,
        orders.status,
        orders.ordered_at,
        orders.updated_at,

        orders.subtotal,
        orders.tax_paid,
        orders.order_total,
        coalesce(order_summaries.order_items_subtotal, 0) as order_items_subtotal,
        coalesce(order_summaries.order_cost, 0) as order_cost,

        coalesce(order_summaries.count_order_lines, 0) as count_order_lines,
        coalesce(order_summaries.count_order_items, 0) as count_order_items,
        coalesce(order_summaries.count_food_items, 0) as count_food_items,
        coalesce(order_summaries.count_drink_items, 0) as count_drink_items,
        coalesce(order_summaries.count_food_items, 0) > 0 as is_food_order,
        coalesce(order_summaries.count_drink_items, 0) > 0 as is_drink_order

    from orders

    left join order_summaries
        on orders.order_id = order_summaries.order_id

),

numbered as (

    select
        *,
        -- The order id breaks ties between orders placed in the same second.
        row_number() over (
            partition by customer_id
            order by ordered_at, order_id
        ) as customer_order_number

    from joined

)

select * from numbered
