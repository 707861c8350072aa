"""The exact sum of the memories' deltas, W x + sum_i w_i s_i B_i A_i x: the hooks add each adapter."""

from __future__ import annotations

from loramem.merges.base import Adapters, Merge, merge_method


# "cat": PEFT's name for the same exact sum (it concatenates the factors)
@merge_method("sum", "cat", peft=None, reference="https://huggingface.co/docs/peft/developer_guides/lora#merge-lora-weights")
def exact_sum(adapters: Adapters, settings: Merge) -> Adapters:
    """the exact weighted sum of the deltas (ranks and target modules may differ)"""
    return adapters

