with

source as (

    select * from {{ source('dlt_shop_files', 'supplies') }}

),

renamed as (

    select
        -- ids
        cast(id as integer) as supply_id,
        sku,

        -- text
        name as supply_name,

        -- numerics
        {{ cents_to_dollars('cost') }} as supply_cost,

        -- booleans
        perishable as is_perishable_supply,

        _loaded_at

    from source

)

select * from renamed
