"""Synthetic raw data: a whole raw directory (`generate_raw`) and nightly increments."""

from callmetrics.generation.base import generate_raw
from callmetrics.generation.increment import generate_increment
from callmetrics.generation.summary import GenerationSummary

__all__ = ["GenerationSummary", "generate_increment", "generate_raw"]
