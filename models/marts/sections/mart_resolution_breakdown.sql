{#- Calls by outcome category per organization and UTC bucket. -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
