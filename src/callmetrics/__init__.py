"""callmetrics: a data warehouse for a voice-AI agent platform."""

__version__ = "0.1.0"
