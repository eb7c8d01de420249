{#- Escalated calls with a reason and their time before escalation,
    per organization, UTC bucket and reason. -#}
{#- Declared in _sections__models.yml (the columns' meta); rendered by macros/sections.sql. -#}
{{ section_mart() }}
