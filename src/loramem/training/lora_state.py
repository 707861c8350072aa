"""A memory's LoRA as the trainer holds it — {module path: (A, B)} — and as PEFT keeps it: PEFT's own
initial values, its state-dict keys, its saved folder (adapter_config.json beside the weights)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file

from loramem.adapters import UnsupportedAdapter, save_thresholds
from loramem.adapters.files import CONFIG_FILE, WEIGHTS_FILE
from loramem.errors import LoramemError
from loramem.training.config import TARGET_MODULES, TrainConfig, parse_layers
from loramem.variants import VARIANTS

Layers = dict[str, tuple[torch.Tensor, torch.Tensor]]
PEFT_PREFIX = "base_model.model."
PEFT_FILES = (CONFIG_FILE, "README.md")  # what save_pretrained writes beside the weights
LORA_SETTINGS = ("rank", "alpha", "variant", "target_modules", "layers")  # TrainConfig fields PEFT's LoraConfig takes


@contextmanager
def attached_lora(model: torch.nn.Module, config: TrainConfig, peft: dict | None = None) -> Iterator[torch.nn.Module]:
    """A fresh PEFT LoRA on `model` for the duration of the block (initialised under
    `torch.manual_seed(config.seed)`); the model is restored afterwards, its train/eval mode too.
    `peft`: LoraConfig keywords besides the variant's (a test's reference: PEFT's own PiSSA)."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(config.seed)
    layers = parse_layers(config.layers, model.config.num_hidden_layers)
    targets = TARGET_MODULES[config.target_modules]
    linears = {name.rsplit(".", 1)[-1] for name, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and ".layers." in f".{name}"}
    if isinstance(targets, str):
        if layers is not None:  # PEFT takes layer ranges only with named modules: every linear layer of the decoder
            targets = sorted(linears)
    else:  # the placement's layers this model family has
        targets = [t for t in targets if t in linears]
        if not targets:
            raise LoramemError(f"placement {config.target_modules!r} finds none of its layers "
                               f"({', '.join(TARGET_MODULES[config.target_modules])}) in this model: its linear "
                               f"layers are {', '.join(sorted(linears))}")
    lora = LoraConfig(r=config.rank, lora_alpha=config.lora_alpha, lora_dropout=0.0, target_modules=targets,
                      layers_to_transform=layers, layers_pattern="layers" if layers is not None else None,
                      task_type="CAUSAL_LM", **{**VARIANTS.get(config.variant).peft, **(peft or {})})
    was_training = model.training
    peft_model = get_peft_model(model, lora)
    try:
        yield peft_model
    finally:
        peft_model.unload()  # removes the injected LoRA layers, leaving the base model as it was
        model.train(was_training)


def from_state(state: dict[str, torch.Tensor]) -> Layers:
    """PEFT-keyed LoRA weights (a state dict or a saved folder's tensors) as {module path: (A, B)}."""
    layers: dict[str, list] = {}
    for key, value in state.items():
        path, which = key[len(PEFT_PREFIX):].rsplit(".lora_", 1)
        layers.setdefault(path, [None, None])[0 if which.startswith("A") else 1] = value.detach().clone()
    return {path: (a, b) for path, (a, b) in layers.items()}


def to_state(layers: Layers) -> dict[str, torch.Tensor]:
    """{module path: (A, B)} as the fp32 state dict PEFT saves."""
    return {f"{PEFT_PREFIX}{path}.lora_{w}.weight": t.detach().float().contiguous()
            for path, (a, b) in layers.items() for w, t in (("A", a), ("B", b))}


def initial_lora(model: torch.nn.Module, config: TrainConfig) -> Layers:
    """The LoRA a write starts from on `model`: PEFT's init under `torch.manual_seed(config.seed)`,
    attached and taken off again, so the values are PEFT's own; then as the variant starts it."""
    from peft import get_peft_model_state_dict  # PEFT imports in seconds: only a write pays for it

    with attached_lora(model, config) as peft_model:
        peft_init = from_state(get_peft_model_state_dict(peft_model))
    return VARIANTS.get(config.variant).initial(model, config, peft_init)


def lora_key(config: TrainConfig) -> str:
    """The settings PEFT's adapter_config.json depends on (with the model)."""
    d = asdict(config)
    return repr([d[k] for k in LORA_SETTINGS])


def init_key(config: TrainConfig) -> str:
    """The settings PEFT's initial LoRA depends on (with the model): equal keys, equal initial weights."""
    d = asdict(config)
    return repr([d[k] for k in (*LORA_SETTINGS, "seed")])


def save_adapter(model: torch.nn.Module, config: TrainConfig, layers: Layers, folder: Path,
                 templates: dict[str, dict[str, bytes]]) -> None:
    """Save `layers` as the PEFT folder save_pretrained writes, with the TIES trimming thresholds.

    The first memory of a LoRA setting is saved through PEFT (attached, loaded, save_pretrained);
    later ones get the files PEFT wrote beside its weights (`templates`, by `lora_key`) and their
    own weights under the same names, which is what save_pretrained writes for them (tested):
    attaching PEFT cost ~0.6 s a memory on SmolLM2, a tenth of a batched corpus write.
    """
    config = VARIANTS.get(config.variant).saved(config)  # PiSSA: the rank-2r LoRA PEFT converts it to
    state, key = to_state(layers), lora_key(config)
    if key in templates:
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in templates[key].items():
            (folder / name).write_bytes(data)
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    else:
        from peft import set_peft_model_state_dict

        with attached_lora(model, config) as peft_model:
            set_peft_model_state_dict(peft_model, state)
            peft_model.save_pretrained(str(folder))
        templates[key] = {f.name: f.read_bytes() for f in folder.iterdir() if f.is_file() and f.name in PEFT_FILES}
    try:
        save_thresholds(folder)
    except UnsupportedAdapter:
        pass  # not a plain LoRA: merges fall back to PEFT
