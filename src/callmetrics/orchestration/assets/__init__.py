"""Asset definitions: raw sources, the dbt project, the exported payloads."""
