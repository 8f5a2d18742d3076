with

source as (

    select * from {{ source('dlt_shop_db', 'customers') }}

),

renamed as (

    select
        -- ids
        cast(id as integer) as customer_id,

        -- text
        name as customer_name,
        email,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        _loaded_at

    from source

)

select * from renamed
