{#- Primary key of a model: the combination of columns is unique and none of them is null. -#}
{% test primary_key(model, column_names) %}
    select {{ column_names | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ column_names | join(', ') }}
    having count(*) > 1
        {%- for column in column_names %}
        or {{ column }} is null
        {%- endfor %}
{% endtest %}

{#- The combination of columns is unique; a null counts as one value. -#}
{% test unique_combination_of_columns(model, column_names) %}
    select {{ column_names | join(', ') }}, count(*) as row_count
    from {{ model }}
    group by {{ column_names | join(', ') }}
    having count(*) > 1
{% endtest %}
