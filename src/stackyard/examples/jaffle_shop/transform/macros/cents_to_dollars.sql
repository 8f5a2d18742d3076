{#-
    Integer cents to a dollar amount with two decimals.

    Casting before dividing matters: on Postgres `integer / 100` is integer division and would
    drop the cents. Dispatched so a warehouse with its own idiom can override it
    (`<adapter>__cents_to_dollars`).
-#}
{% macro cents_to_dollars(column_name) -%}
    {{ return(adapter.dispatch('cents_to_dollars')(column_name)) }}
{%- endmacro %}

{% macro default__cents_to_dollars(column_name) -%}
    cast(cast({{ column_name }} as numeric(16, 2)) / 100 as numeric(16, 2))
{%- endmacro %}
