"""Helpers of ``benchmarks/compare_peers.py``: workloads, per-method runners, the report.

Not part of the ``deepsad`` package and not imported by the test suite.
"""
