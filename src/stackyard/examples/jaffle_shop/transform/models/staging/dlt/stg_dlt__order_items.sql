with

source as (

    select * from {{ source('dlt_shop_db', 'order_items') }}

),

renamed as (

    select
        -- ids
        cast(id as integer) as order_item_id,
        cast(order_id as integer) as order_id,
        sku,

        -- numerics
        cast(quantity as integer) as quantity,

        -- timestamps
        cast(updated_at as timestamp) as updated_at,
        _loaded_at

    from source

)

select * from renamed
