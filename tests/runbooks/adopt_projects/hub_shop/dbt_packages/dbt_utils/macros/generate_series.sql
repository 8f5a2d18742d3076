{% macro generate_series(upper_bound) %}select range + 1 as generated_number from range({{ upper_bound }}){% endmacro %}
