{#- The latency sketch's bin of one ttft_ms sample (metrics.md, "Latency percentiles"): the
    DDSketch mapping with a relative accuracy of 1%, bin = ceil(ln(x) / ln(gamma)),
    gamma = (1 + 0.01) / (1 - 0.01); a sample of 0 is in a bin of its own, below every other
    (-2^31); null for no sample (a negative value). src/callmetrics/exporter/sketch.py reports each bin's value. -#}
{% macro latency_sketch_bin(column) -%}
    {{ return(adapter.dispatch('latency_sketch_bin', 'callmetrics')(column)) }}
{%- endmacro %}

{% macro default__latency_sketch_bin(column) -%}
    cast(case
        when {{ column }} = 0 then -2147483648
        when {{ column }} > 0 then ceil(ln({{ column }}) / ln(1.01 / 0.99))
    end as integer)
{%- endmacro %}

{#- Spark: the same mapping in doubles (Spark would divide 1.01 by 0.99 as decimals, to six
    places). -#}
{% macro spark__latency_sketch_bin(column) -%}
    cast(case
        when {{ column }} = 0 then -2147483648
        when {{ column }} > 0 then ceil(ln({{ column }}) / ln(double(1.01) / double(0.99)))
    end as integer)
{%- endmacro %}

{#- The bins of a list of ttft_ms samples, element by element (a sorted list gives its bins in
    ttft_ms order: the mapping is monotone). -#}
{% macro latency_sketch_bins(values) -%}
    {{ return(adapter.dispatch('latency_sketch_bins', 'callmetrics')(values)) }}
{%- endmacro %}

{% macro default__latency_sketch_bins(values) -%}
    list_transform({{ values }}, lambda sample_ms: {{ latency_sketch_bin('sample_ms') }})
{%- endmacro %}

{% macro spark__latency_sketch_bins(values) -%}
    transform({{ values }}, sample_ms -> {{ latency_sketch_bin('sample_ms') }})
{%- endmacro %}
