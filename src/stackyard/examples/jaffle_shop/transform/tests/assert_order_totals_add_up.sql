-- Every order's total is its subtotal plus tax, and its subtotal is what its items cost.
-- Returns the orders where either does not hold.

select
    order_id,
    subtotal,
    order_items_subtotal,
    tax_paid,
    order_total

from {{ ref('orders') }}

where order_total <> subtotal + tax_paid
    or subtotal <> order_items_subtotal
