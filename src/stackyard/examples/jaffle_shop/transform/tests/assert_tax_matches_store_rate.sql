-- Tax is the store's rate applied to the subtotal, rounded to the cent.
-- Returns the orders where it is off by more than half a cent.

select
    orders.order_id,
    orders.subtotal,
    orders.tax_paid,
    stores.tax_rate

from {{ ref('orders') }} as orders

inner join {{ ref('stores') }} as stores
    on orders.store_id = stores.store_id

where abs(orders.tax_paid - orders.subtotal * stores.tax_rate) > 0.005
