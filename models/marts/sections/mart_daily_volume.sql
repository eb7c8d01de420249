{#- Calls and resolved calls per organization and UTC bucket, with the bucket's UTC date. -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
