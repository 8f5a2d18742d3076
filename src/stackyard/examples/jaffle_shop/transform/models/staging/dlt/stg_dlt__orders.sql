with

source as (

    select * from {{ source('dlt_shop_db', 'orders') }}

),

renamed as (

    select
        -- ids
        cast(id as integer) as order_id,
        cast(customer_id as integer) as customer_id,
        cast(store_id as integer) as store_id,

        -- text
        status,

        -- numerics: cents in the app database, dollars from here on
        {{ cents_to_dollars('subtotal') }} as subtotal,
        {{ cents_to_dollars('tax_paid') }} as tax_paid,
        {{ cents_to_dollars('order_total') }} as order_total,

        -- timestamps
        cast(ordered_at as timestamp) as ordered_at,
        cast(updated_at as timestamp) as updated_at,
        _loaded_at

    from source

)

select * from renamed
