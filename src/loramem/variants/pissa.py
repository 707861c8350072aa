"""`pissa`: LoRA started from the base weight's principal singular vectors (Meng et al., 2024):
PEFT's `init_lora_weights="pissa"`, saved as PEFT converts it for an unchanged base model.

PiSSA trains B A on the residual weight W_res = W - s B0 A0, where s B0 A0 is W's top-r singular
part and (A0, B0) the factors training starts from. Since W_res + s B A = W + s (B A - B0 A0),
loramem trains on the unchanged base model with the rank-2r factors [A; A0] and [B, -B0], whose
second half never trains: the same function as PiSSA's, and exactly the adapter PEFT's
`save_pretrained(path_initial_model_for_weight_conversion=...)` writes (rank 2r, alpha 2 alpha).
So the memory is plain LoRA wherever it goes (answering, merging, serving, export, plain PEFT),
and the base model is never modified. Pinned to PEFT's init and training in tests/test_variants.py.
"""

from __future__ import annotations

import dataclasses

from loramem.variants.base import VARIANTS, LoraVariant


class PiSSA(LoraVariant):
    def initial(self, model, config, peft_init):
        import torch

        modules = dict(model.named_modules())
        scale = config.scale
        layers = {}
        for path in peft_init:
            weight = modules[path].weight.detach().to(torch.float32)  # PEFT decomposes in float32
            u, s, vh = torch.linalg.svd(weight, full_matrices=False)
            root = torch.sqrt(s[: config.rank] / scale)
            a0, b0 = root[:, None] * vh[: config.rank], u[:, : config.rank] * root  # PEFT's lora_A, lora_B
            layers[path] = (torch.cat([a0, a0]), torch.cat([b0, -b0], dim=1))
        return layers

    def trained_rank(self, config):
        return config.rank

    def saved(self, config):
        return dataclasses.replace(config, rank=2 * config.rank, alpha=2 * config.lora_alpha, variant="lora")


VARIANTS.register("pissa")(PiSSA(summary="LoRA started from the base weight's top-r singular vectors, saved as "
                                          "a rank-2r LoRA of the unchanged base",
                                  reference="https://arxiv.org/abs/2404.02948"))
