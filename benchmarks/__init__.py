"""Benchmarks for issue 3: streaming cost per token, bytes to the browser, steps, freshness.

Run ``make bench`` (``python -m benchmarks``); ``--quick`` for a fast smoke run.
Every figure is measured side by side with its baseline in the same run.
"""
