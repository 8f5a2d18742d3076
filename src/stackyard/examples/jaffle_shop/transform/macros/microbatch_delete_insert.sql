{#- dbt-postgres implements microbatch as a MERGE on unique_key, which leaves a day's stale rows
    behind when the source lost them. Here a batch is replaced whole, as dbt-duckdb does:
    delete the batch's window, insert the batch, inside the materialization's transaction. -#}
{% macro postgres__get_incremental_microbatch_sql(arg_dict) %}
    {%- set event_time = config.get('event_time') -%}
    {%- set batch = model.get('batch') -%}
    {%- set dest_cols_csv = get_quoted_csv(arg_dict["dest_columns"] | map(attribute="name")) -%}
    delete from {{ arg_dict["target_relation"] }}
    where {{ event_time }} >= '{{ batch.event_time_start }}'
      and {{ event_time }} < '{{ batch.event_time_end }}';

    insert into {{ arg_dict["target_relation"] }} ({{ dest_cols_csv }})
    select {{ dest_cols_csv }}
    from {{ arg_dict["temp_relation"] }}
    where {{ event_time }} >= '{{ batch.event_time_start }}'
      and {{ event_time }} < '{{ batch.event_time_end }}';
{% endmacro %}
