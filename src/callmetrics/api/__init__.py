"""The HTTP API of ``../shared/spec/api.md``: ``callmetrics serve`` and ``callmetrics keys``."""
