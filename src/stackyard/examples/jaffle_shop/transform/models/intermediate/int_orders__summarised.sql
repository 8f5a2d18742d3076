-- One row per order: what its lines add up to.

with

order_items as (

    select * from {{ ref('int_order_items__priced') }}

),

summarised as (

    select
        order_id,

        count(*) as count_order_lines,
        sum(quantity) as count_order_items,
        sum(case when is_food_item then quantity else 0 end) as count_food_items,
        sum(case when is_drink_item then quantity else 0 end) as count_drink_items,

        sum(line_subtotal) as order_items_subtotal,
        sum(line_supply_cost) as order_cost

    from order_items

    group by order_id

)

select * from summarised
