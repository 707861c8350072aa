"""Benchmarks: programs that measure and print numbers (JSON + a table), never timed tests."""

import os
import platform

TAU = 0.9  # the score at which a size counts as stored: the datasheet's default and the report's threshold


def hardware(device) -> str:
    """What a figure was measured on: the GPU's name, else the CPU's model and its cores.

    Speed figures from different machines differ (AVX512 Xeons and AVX2 EPYCs take turns here),
    so every speed benchmark records it beside its numbers.
    """
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    name = ""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{name or platform.processor() or 'CPU'}, {os.cpu_count()} cores"
