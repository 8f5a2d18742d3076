select c.customer_id, c.name, count(o.order_id) as orders, coalesce(sum(o.amount), 0) as total
from {{ ref('base_customers') }} c
left join {{ ref('base_orders') }} o using (customer_id)
group by 1, 2
