with

source as (

    select * from {{ source('dlt_shop_files', 'products') }}

),

renamed as (

    select
        -- ids
        sku,

        -- text
        name as product_name,
        type as product_type,
        description as product_description,

        -- numerics: a CSV column may arrive as text or a guessed type, so cast explicitly
        {{ cents_to_dollars('cast(price as integer)') }} as product_price,

        -- booleans
        type = 'jaffle' as is_food_item,
        type = 'beverage' as is_drink_item,

        _loaded_at

    from source

)

select * from renamed
