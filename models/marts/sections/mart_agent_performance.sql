{#- Per-agent call parts per organization, UTC bucket and agent (calls with an agent only). -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
