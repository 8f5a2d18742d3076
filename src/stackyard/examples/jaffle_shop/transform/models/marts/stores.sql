with

stores as (

    select * from {{ ref('stg_dlt__stores') }}

),

orders as (

    select * from {{ ref('stg_dlt__orders') }}

),

store_orders as (

    select
        store_id,
        count(*) as count_orders,
        count(distinct customer_id) as count_customers,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        -- Returned orders were refunded: they are not revenue.
        sum(case when status <> 'returned' then order_total else 0 end) as revenue,
        sum(case when status <> 'returned' then tax_paid else 0 end) as tax_collected

    from orders

    group by store_id

),

joined as (

    select
        stores.store_id,
        stores.store_name,
        stores.opened_at,
        stores.tax_rate,

        store_orders.first_ordered_at,
        store_orders.last_ordered_at,
        coalesce(store_orders.count_orders, 0) as count_orders,
        coalesce(store_orders.count_customers, 0) as count_customers,
        coalesce(store_orders.revenue, 0) as revenue,
        coalesce(store_orders.tax_collected, 0) as tax_collected

    from stores

    left join store_orders
        on stores.store_id = store_orders.store_id

)

select * from joined
