"""Training settings: one typed source of truth, shared by the CLI and the Python API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from loramem.errors import LoramemError
from loramem.training.objectives import OBJECTIVES, check_objective
from loramem.variants import DEFAULT_VARIANT, VARIANTS

# Memories trained together by default: 8, by measurement (`loramem bench corpus`, 16 PhoneBook
# sectors of 4 entries, SmolLM2-135M, fp32, 2 CPU threads): 1.34x the memories per hour of one at a
# time at N = 4, 1.45-1.53x at N = 8, 1.45x at N = 16, every memory reading back 100% both ways in
# the same number of epochs (`benchmarks/corpus-cpu.json`). A CPU gains little: one memory's step
# already runs its GEMMs at about half the matmul peak. On a GPU, where one memory fills a small
# part of the device, a larger N (16-64) should pay.
BENCH_BATCH_MEMORIES = 8  # what `bench corpus` compares against one by one
DEFAULT_BATCH_MEMORIES = BENCH_BATCH_MEMORIES

TARGET_MODULES = {  # placements: names of the linear layers they cover, in whichever family has them
    "all-linear": "all-linear",  # PEFT picks every linear layer but the output head
    "ffn": ["gate_proj", "up_proj", "down_proj", "gate_up_proj"],  # gate_up_proj: Phi-3's packed gate and up
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj", "qkv_proj"],  # qkv_proj: Phi-3's packed q, k and v
}


@dataclass
class TrainConfig:
    """How a memory is written. Defaults store a small fact table on the default model in ~1 min."""

    rank: int = field(default=8, metadata={"help": "LoRA rank r"})
    alpha: float | None = field(default=None, metadata={"help": "LoRA alpha (default 2 * rank)"})
    variant: str = field(default=DEFAULT_VARIANT, metadata={
        "help": "LoRA variant: " + "; ".join(f"{n}: {VARIANTS.get(n).summary}" for n in VARIANTS.names())})
    epochs: int = field(default=40, metadata={"help": "upper bound on passes over the supervision"})
    lr: float = field(default=2e-3, metadata={"help": "peak learning rate (AdamW)"})
    warmup_steps: int = field(default=5, metadata={"help": "linear warm-up steps"})
    batch_size: int = field(default=8, metadata={"help": "examples per optimizer step"})
    target_modules: str = field(default="all-linear", metadata={"help": " | ".join(TARGET_MODULES)})
    seed: int = field(default=0, metadata={"help": "seed for initialization and shuffling"})
    target_recall: float | None = field(default=None, metadata={
        "help": "stop once read-back recall reaches this (default: 1.0 for fact tables, 0.95 for documents)"})
    patience: int | None = field(default=None, metadata={
        "help": "also stop once read-back recall is at least 0.9 and has not risen for this many epochs "
                "(default: 2 for documents, never for fact tables; 0: never)"})
    precision: str = field(default="auto", metadata={
        "help": "auto | fp32 | bf16 (auto: bf16 where the hardware has fast bf16 matmul)"})
    objective: str = field(default="auto", metadata={
        "help": " | ".join(OBJECTIVES) + " (distill: deep context distillation)"})
    distill_hidden: float = field(default=0.0, metadata={"help": "weight of the hidden-state distance in distillation"})
    layers: str = field(default="all", metadata={"help": "all | early | late | indices such as 0-7 or 0,2,4"})
    anchors: int = field(default=0, metadata={
        "help": "general prompts with the base model's own answers trained beside the knowledge, so other "
                "questions stay answered as the base model answers them (0: none)"})

    def __post_init__(self) -> None:
        if not isinstance(self.rank, int) or self.rank <= 0:
            raise LoramemError(f"rank must be a positive integer, got {self.rank}")
        if self.epochs <= 0:
            raise LoramemError(f"epochs must be positive, got {self.epochs}")
        if self.lr <= 0:
            raise LoramemError(f"learning rate must be positive, got {self.lr}")
        if self.batch_size <= 0:
            raise LoramemError(f"batch size must be positive, got {self.batch_size}")
        if self.patience is not None and (not isinstance(self.patience, int) or self.patience < 0):
            raise LoramemError(f"patience must be a number of epochs >= 0, got {self.patience}")
        if self.target_recall is not None and not 0 < self.target_recall <= 1:
            raise LoramemError(f"target recall must be in (0, 1], got {self.target_recall}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise LoramemError(f"unknown precision {self.precision!r}; valid: auto, fp32, bf16")
        if self.target_modules not in TARGET_MODULES:
            raise LoramemError(
                f"unknown target modules {self.target_modules!r}; valid: {', '.join(TARGET_MODULES)}"
            )

        check_objective(self.objective)
        VARIANTS.get(self.variant)  # unknown: one line naming the registered ones
        if self.distill_hidden < 0:
            raise LoramemError(f"distill_hidden must be >= 0, got {self.distill_hidden}")
        parse_layers(self.layers, None)
        if not isinstance(self.anchors, int) or self.anchors < 0:
            raise LoramemError(f"anchors must be a number >= 0, got {self.anchors}")

    @property
    def lora_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.rank

    @property
    def scale(self) -> float:
        """The factor on the adapter's B A, as its variant applies alpha and the rank."""
        return VARIANTS.get(self.variant).scale(self.lora_alpha, self.rank)


# Fields added to TrainConfig after memories were written without them, with the value those were
# written with: a stored config or a checkpoint's key that lacks one is read as that value.
FIELDS_ADDED = {"variant": DEFAULT_VARIANT}


def as_written(config: TrainConfig) -> dict:
    """`config` as a dict, without the added fields at the value older memories have: a checkpoint's
    key (training/run.py) stays what it was before the field existed, so old checkpoints resume."""
    d = asdict(config)
    return {k: v for k, v in d.items() if not (k in FIELDS_ADDED and v == FIELDS_ADDED[k])}


def parse_rank(value: int | str) -> int | str:
    """A rank as a user gives it (the CLI, the API, a form field): a positive integer, its digits, or
    'auto' (`write --rank auto`: picked from the model's datasheet); else a one-line error."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.lstrip("-").isdigit():
        text = int(text)
    if not isinstance(text, int) or isinstance(text, bool) or text < 1:
        raise LoramemError(f"rank must be a positive integer or 'auto', got {value!r}")
    return text


def parse_layers(spec: str, n_layers: int | None) -> list[int] | None:
    """Decoder layers that get LoRA: None for all; `early`/`late` are the first/second half.

    With `n_layers` None only the syntax is checked (before any model is loaded).
    """
    spec = str(spec).strip().lower()
    if spec == "all":
        return None
    if spec in ("early", "late"):
        if n_layers is None:
            return None
        half = n_layers // 2
        return list(range(half)) if spec == "early" else list(range(half, n_layers))
    layers = parse_indices(spec, "layers", "use all, early, late, or indices like 0-7 or 0,2,4")
    if n_layers is not None and max(layers) >= n_layers:
        raise LoramemError(f"layers {spec!r}: the model has {n_layers} layers (0-{n_layers - 1})")
    return layers


def parse_indices(spec: str, what: str, hint: str = "use indices like 0-7 or 0,2,4") -> list[int]:
    """`0-3,7` → [0, 1, 2, 3, 7]."""
    found: set[int] = set()
    try:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            lo, _, hi = item.partition("-")
            found.update(range(int(lo), int(hi) + 1) if hi else [int(lo)])
    except ValueError:
        raise LoramemError(f"cannot parse {what} {spec!r}; {hint}") from None
    if not found:
        raise LoramemError(f"cannot parse {what} {spec!r}; {hint}")
    return sorted(found)
