{#- Calls and duration per organization and UTC bucket, with the bucket's UTC hour of day. -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
