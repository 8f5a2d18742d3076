-- Customers who have ordered, by the month of their first order (their cohort), with what
-- they are worth so far.

with

customers as (

    select * from {{ ref('customers') }}

),

ordering_customers as (

    select * from customers

    where first_ordered_at is not null

),

final as (

    select
        customer_id,
        customer_name,
        customer_type,
        cast({{ dbt.date_trunc('month', 'first_ordered_at') }} as date) as cohort_month,
        first_ordered_at,
        last_ordered_at,
        {{ dbt.datediff('first_ordered_at', 'last_ordered_at', 'day') }} as days_active,
        count_lifetime_orders,
        count_returned_orders,
        lifetime_spend,
        case
            when count_lifetime_orders > count_returned_orders
                then cast(
                    lifetime_spend / (count_lifetime_orders - count_returned_orders)
                    as numeric(16, 2)
                )
        end as average_order_value

    from ordering_customers

)

select * from final
