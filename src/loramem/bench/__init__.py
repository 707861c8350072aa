"""Benchmarks: programs that measure and print numbers (JSON + a table), never timed tests."""
