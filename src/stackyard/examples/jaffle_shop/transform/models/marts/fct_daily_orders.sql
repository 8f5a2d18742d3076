-- Orders and revenue per store per day, built one day at a time (dbt microbatch). A first
-- build covers the last week (`begin`, or the var fct_daily_orders_begin); a run rebuilds the
-- recent days; history and repairs go through
--   stackyard backfill fct_daily_orders --start YYYY-MM-DD --end YYYY-MM-DD
-- which replaces each day whole (delete + insert in one transaction) and keeps a ledger.
-- On Spark a batch overwrites its day's partition (dbt-spark's microbatch is insert_overwrite
-- by partition_by, which only Spark reads).
{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='order_date',
        batch_size='day',
        lookback=1,
        begin=var('fct_daily_orders_begin', (modules.datetime.date.today() - modules.datetime.timedelta(days=7)).isoformat()),
        schema='marts',
        partition_by=(['order_date'] if target.type == 'spark' else none),
    )
}}

with

orders as (

    -- dbt filters this ref to the batch's days, on stg_dlt__orders' event_time (ordered_at).
    select * from {{ ref('stg_dlt__orders') }}

),

daily as (

    select
        cast({{ dbt.date_trunc('day', 'ordered_at') }} as timestamp) as order_date,
        store_id,
        count(*) as count_orders,
        sum(case when status = 'returned' then 1 else 0 end) as count_returned_orders,
        sum(case when status <> 'returned' then order_total else 0 end) as revenue

    from orders

    group by 1, 2

)

select
    {{ dbt.concat([
        "cast(store_id as " ~ dbt.type_string() ~ ")",
        "'-'",
        "cast(cast(order_date as date) as " ~ dbt.type_string() ~ ")",
    ]) }} as store_day_id,
    order_date,
    store_id,
    count_orders,
    count_returned_orders,
    revenue

from daily
