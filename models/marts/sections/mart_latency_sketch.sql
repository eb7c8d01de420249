{#- The latency sketch's sample counts per organization, UTC bucket and bin. -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
