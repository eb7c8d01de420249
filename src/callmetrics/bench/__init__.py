"""The benchmark harness (issue 5): every step of the product timed at one scale, in one run.

Run ``python -m callmetrics.bench --calls N [--days D] [--out bench/results]``; see
``docs/benchmarks.md``.
"""
