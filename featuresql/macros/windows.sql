{#- Built-in window aggregation macros. Each renders a marker that the compiler
    finds in the parsed query and expands into one column per window.
    Arguments: the input SQL expression (a column name or any row-level
    expression), windows (e.g. ['1d', '7d']), name= to override the output
    column name ('{window}' is replaced by the window, e.g. 'spend_{window}'),
    and for first/last tie_break= (a column that orders events tied on time). -#}

{% macro window_count(column=none, windows=none, name=none) -%}
{{ featuresql_window('count', column, windows, name) }}
{%- endmacro %}

{% macro window_sum(column, windows=none, name=none) -%}
{{ featuresql_window('sum', column, windows, name) }}
{%- endmacro %}

{% macro window_avg(column, windows=none, name=none) -%}
{{ featuresql_window('avg', column, windows, name) }}
{%- endmacro %}

{% macro window_min(column, windows=none, name=none) -%}
{{ featuresql_window('min', column, windows, name) }}
{%- endmacro %}

{% macro window_max(column, windows=none, name=none) -%}
{{ featuresql_window('max', column, windows, name) }}
{%- endmacro %}

{% macro window_stddev(column, windows=none, name=none) -%}
{{ featuresql_window('stddev', column, windows, name) }}
{%- endmacro %}

{% macro window_stddev_pop(column, windows=none, name=none) -%}
{{ featuresql_window('stddev_pop', column, windows, name) }}
{%- endmacro %}

{% macro window_variance(column, windows=none, name=none) -%}
{{ featuresql_window('variance', column, windows, name) }}
{%- endmacro %}

{% macro window_variance_pop(column, windows=none, name=none) -%}
{{ featuresql_window('variance_pop', column, windows, name) }}
{%- endmacro %}

{% macro window_count_distinct(column, windows=none, name=none) -%}
{{ featuresql_window('count_distinct', column, windows, name) }}
{%- endmacro %}

{% macro window_first(column, windows=none, name=none, tie_break=none) -%}
{{ featuresql_window('first', column, windows, name, tie_break) }}
{%- endmacro %}

{% macro window_last(column, windows=none, name=none, tie_break=none) -%}
{{ featuresql_window('last', column, windows, name, tie_break) }}
{%- endmacro %}
