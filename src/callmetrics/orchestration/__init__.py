"""Dagster orchestration of the callmetrics warehouse (see `orchestration.definitions`)."""
