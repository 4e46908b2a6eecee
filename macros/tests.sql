{#- Custom generic tests of the example project (used in features/models.yml). -#}

{% test at_most(model, column_name, other) %}
{#- Rows where the column exceeds another column of the same row. -#}
select *
from {{ model }}
where {{ column_name }} > {{ other }}
{% endtest %}
