{#-
    Schemas are named exactly as configured (`staging`, `marts`, `reporting`) instead of dbt's
    default `<target schema>_<custom schema>`: stackyard's access policies grant on those names,
    and each target is its own database, so there is no need to prefix them per target.
    Models without a custom schema go to the target's schema.
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
