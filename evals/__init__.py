"""Evaluation harness and governance reports (issue 9).

Retrieval quality and refusal calibration are measured today by ``benchmarks/retrieval.py`` and
``benchmarks/calibrate.py`` on ``benchmarks/devset`` and ``benchmarks/heldout``.
"""
