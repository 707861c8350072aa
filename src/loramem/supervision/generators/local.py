"""The base model as its own generator: greedy first, then seeded samples for more variety."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from loramem.prompts import PromptFormat
from loramem.supervision.generators.base import GENERATORS, Generator

if TYPE_CHECKING:
    import torch


@dataclass
class LocalGenerator(Generator):
    base: object  # loramem.models.BaseModel
    max_new_tokens: int = 320
    temperature: float = 0.8

    @property
    def id(self) -> str:
        return f"local:{self.base.fingerprint}:{self.max_new_tokens}:{self.temperature}"

    @property
    def label(self) -> str:
        return f"{self.base.name} (the base model)"

    def _generate(self, ids: torch.Tensor, fmt: PromptFormat, n: int, sample: bool) -> list[str]:
        import torch  # here, so that naming the generators (the CLI's help) loads no torch

        from loramem.kernels.decode_linear import decode_linears

        with torch.no_grad(), decode_linears(self.base.model):  # few rows a step: the CPU kernel (loramem.kernels)
            out = self.base.model.generate(
                ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                do_sample=sample, temperature=self.temperature if sample else None, top_p=0.95 if sample else None,
                top_k=None, num_return_sequences=n, eos_token_id=fmt.stop_ids, pad_token_id=fmt.end_id,
            )
        return self.base.tokenizer.batch_decode(out[:, ids.shape[1]:], skip_special_tokens=True)

    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        import torch

        fmt = PromptFormat(self.base.tokenizer)
        ids = torch.tensor([fmt.prompt_ids(prompt)], device=self.base.device)
        texts = [] if sample else self._generate(ids, fmt, 1, sample=False)
        if n > len(texts):
            torch.manual_seed(seed)  # sampled completions are reproducible
            texts += self._generate(ids, fmt, n - len(texts), sample=True)
        return texts


@GENERATORS.register("local")
def local_generator(base, options: dict) -> LocalGenerator:
    """The base model as its own generator."""
    return LocalGenerator(base=base())
