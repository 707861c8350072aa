"""Compiled CPU kernels, built once per machine and optional: every caller has a torch fallback."""
