with

source as (

    select * from {{ source('dlt_shop_files', 'stores') }}

),

renamed as (

    select
        -- ids: a CSV column may arrive as text or a guessed type, so cast explicitly
        cast(id as integer) as store_id,

        -- text
        name as store_name,

        -- numerics
        cast(tax_rate as decimal(6, 4)) as tax_rate,

        -- timestamps
        cast(opened_at as timestamp) as opened_at,
        _loaded_at

    from source

)

select * from renamed
