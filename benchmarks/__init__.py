"""Benchmarks and load tools (``make bench``, ``bench-scale``, ``bench-cluster``,
``bench-api``, ``load-api``): not part of the product packages."""
