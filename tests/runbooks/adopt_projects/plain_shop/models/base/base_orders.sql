select id as order_id, customer_id, cast(ordered_on as date) as ordered_on, amount_cents / 100.0 as amount
from {{ ref('raw_orders') }}
