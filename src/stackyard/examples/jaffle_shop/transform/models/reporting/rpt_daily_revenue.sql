-- Orders and revenue per store per day, for dashboards. Returned orders count as orders but
-- not as revenue (they were refunded).

with

orders as (

    select * from {{ ref('orders') }}

),

stores as (

    select * from {{ ref('stores') }}

),

daily as (

    select
        store_id,
        cast({{ dbt.date_trunc('day', 'ordered_at') }} as date) as order_date,

        count(*) as count_orders,
        sum(case when status = 'returned' then 1 else 0 end) as count_returned_orders,
        sum(count_order_items) as count_order_items,
        sum(case when status <> 'returned' then subtotal else 0 end) as revenue_pretax,
        sum(case when status <> 'returned' then order_total else 0 end) as revenue,
        sum(order_cost) as order_cost

    from orders

    group by
        store_id,
        cast({{ dbt.date_trunc('day', 'ordered_at') }} as date)

),

joined as (

    select
        {{ dbt.concat([
            "cast(daily.store_id as " ~ dbt.type_string() ~ ")",
            "'-'",
            "cast(daily.order_date as " ~ dbt.type_string() ~ ")",
        ]) }} as store_day_id,
        daily.store_id,
        stores.store_name,
        daily.order_date,
        daily.count_orders,
        daily.count_returned_orders,
        daily.count_order_items,
        daily.revenue_pretax,
        daily.revenue,
        daily.order_cost

    from daily

    inner join stores
        on daily.store_id = stores.store_id

)

select * from joined
