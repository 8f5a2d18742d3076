-- A store takes no orders before it opens. Returns the orders that say otherwise.

select
    orders.order_id,
    orders.ordered_at,
    stores.opened_at

from {{ ref('orders') }} as orders

inner join {{ ref('stores') }} as stores
    on orders.store_id = stores.store_id

where orders.ordered_at < stores.opened_at
