"""Benchmarks: programs that measure and print numbers (JSON + a table), never timed tests."""

TAU = 0.9  # the score at which a size counts as stored: the datasheet's default and the report's threshold
