select count(*) as orders, sum(amount) as amount from {{ source('ecom', 'orders') }}
