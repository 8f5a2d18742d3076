with

customers as (

    select * from {{ ref('stg_dlt__customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

customer_orders as (

    select
        customer_id,

        count(*) as count_lifetime_orders,
        sum(case when status = 'returned' then 1 else 0 end) as count_returned_orders,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,

        -- A returned order was refunded, so it is not spend.
        sum(case when status <> 'returned' then subtotal else 0 end) as lifetime_spend_pretax,
        sum(case when status <> 'returned' then tax_paid else 0 end) as lifetime_tax_paid,
        sum(case when status <> 'returned' then order_total else 0 end) as lifetime_spend

    from orders

    group by customer_id

),

joined as (

    select
        customers.customer_id,
        customers.customer_name,
        customers.email,
        customers.created_at,

        customer_orders.first_ordered_at,
        customer_orders.last_ordered_at,
        coalesce(customer_orders.count_lifetime_orders, 0) as count_lifetime_orders,
        coalesce(customer_orders.count_returned_orders, 0) as count_returned_orders,
        coalesce(customer_orders.lifetime_spend_pretax, 0) as lifetime_spend_pretax,
        coalesce(customer_orders.lifetime_tax_paid, 0) as lifetime_tax_paid,
        coalesce(customer_orders.lifetime_spend, 0) as lifetime_spend,

        case
            when coalesce(customer_orders.count_lifetime_orders, 0) > 1 then 'returning'
            else 'new'
        end as customer_type

    from customers

    left join customer_orders
        on customers.customer_id = customer_orders.customer_id

)

select * from joined
