"""Options shared by the commands, and option lists generated from the registries and settings
dataclasses, so that a name (mode, router, format, press, merge) or a default is declared once."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console

from loramem.errors import LoramemError
from loramem.options import user_option
from loramem.training import TrainConfig

out = Console()
err_console = Console(stderr=True)


def log(message: str) -> None:
    """Progress lines of a long command, on stderr, printed as they are (no rich markup)."""
    err_console.print(message, markup=False)


def choices(names: list[str] | tuple[str, ...]) -> str:
    return " | ".join(names)


def mode_names() -> list[str]:
    from loramem.modes import MODES

    return MODES.names()


def route_names() -> list[str]:
    from loramem.routing import router_names

    return router_names()


def first_stage_names() -> list[str]:
    from loramem.routing import first_stage_routers

    return first_stage_routers()


def merge_names() -> list[str]:
    from loramem.merges import MERGES

    return MERGES.names()


def _format_help() -> str:
    from loramem.supervision import FORMATS
    from loramem.supervision.formats import ALIASES

    names = ["auto", *FORMATS.names(), *(a for a in ALIASES if a != "auto")]
    return (f"supervision for documents: {choices(names)}, "
            "or a mixture with per-chunk counts such as qa:40,summary:8,rewrite:4,raw")


def _generator_help() -> str:
    from loramem.supervision.generators import GENERATORS

    named = "; ".join(f"{name}: {GENERATORS.get(name).__doc__.strip().rstrip('.').lower()}"
                      for name in GENERATORS.names())
    return (f"who writes QA/summaries/rewrites: {named}; or a .gguf chat model, or an "
            "OpenAI-compatible URL such as http://127.0.0.1:8080/v1")


StoreOpt = typer.Option(None, "--store", help="store folder (default: $LORAMEM_STORE, else a per-user folder)")
ModelOpt = typer.Option(None, "--model", help="base model: folder, hub id or GGUF file (default: embedded SmolLM2-135M-Instruct)")
DeviceOpt = typer.Option(None, "--device", help="cpu | cuda | auto (default: cuda when present)")
FormatOpt = typer.Option("auto", "--format", help=_format_help())
GeneratorOpt = typer.Option("auto", "--generator", help=_generator_help())
GeneratorModelOpt = typer.Option(None, "--generator-model", help="model name at the generator URL "
                                 "(default: $LORAMEM_GENERATOR_MODEL, else the server's first model)")
GeneratorKeyOpt = typer.Option(None, "--generator-key", help="API key for the generator URL "
                               "(default: $LORAMEM_GENERATOR_KEY, else $OPENAI_API_KEY)")
ChunkOpt = typer.Option(384, "--chunk-tokens", help="documents are cut into chunks of this many tokens (48 overlap)")
JsonOpt = typer.Option(False, "--json", help="print one JSON object")
OutJsonOpt = typer.Option(None, "--out", help="write the results as JSON here")


_UNSET = object()


def train_option(name: str, default: object = _UNSET, help: str | None = None):
    """The `--flag` of TrainConfig field `name`: its default and help come from the dataclass.

    `default` overrides it only where a study deliberately trains otherwise (say why at the call).
    """
    opt = user_option(TrainConfig, name)
    return typer.Option(opt.default if default is _UNSET else default, opt.flag, help=help or opt.help)


def limit_option(name: str):
    """The `--flag` of InputLimits field `name` (what one record or document may hold), from the dataclass."""
    from loramem.supervision.limits import InputLimits

    opt = user_option(InputLimits, name)
    return typer.Option(opt.default, opt.flag, help=opt.help)


def input_limits(max_record_tokens: int, max_document_tokens: int):
    """InputLimits from --max-record-tokens and --max-document-tokens."""
    from loramem.supervision.limits import InputLimits

    return InputLimits(max_record_tokens=max_record_tokens, max_document_tokens=max_document_tokens)


def default_of(function: Callable, name: str) -> object:
    """The default of parameter `name` of a library function: the CLI repeats no study's defaults."""
    return inspect.signature(function).parameters[name].default


def with_mode_options(after: str) -> Callable[[Callable], Callable]:
    """Give a command one `--flag` per answer-mode option (see loramem.modes.mode_options), placed
    after its parameter `after`; they reach the command's `**mode_options`, None when not given."""
    from loramem.modes import mode_options

    def decorate(command: Callable) -> Callable:
        params = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                  for p in inspect.signature(command, eval_str=True).parameters.values()
                  if p.kind is not inspect.Parameter.VAR_KEYWORD]
        taken = {p.name for p in params}
        added = []
        for mode_option in mode_options():
            if mode_option.name in taken:
                raise ValueError(f"mode option {mode_option.name!r} collides with {command.__name__}'s own option")
            added.append(inspect.Parameter(
                mode_option.name, inspect.Parameter.KEYWORD_ONLY, annotation=mode_option.option.type | None,
                default=typer.Option(None, mode_option.option.flag, help=mode_option.help)))
        at = [p.name for p in params].index(after) + 1
        command.__signature__ = inspect.Signature([*params[:at], *added, *params[at:]])
        return command

    return decorate


def chunking(chunk_tokens: int):
    """ChunkSettings from --chunk-tokens."""
    from loramem.supervision import ChunkSettings

    if chunk_tokens < 64:
        raise LoramemError(f"--chunk-tokens must be at least 64, got {chunk_tokens}")
    return ChunkSettings(max_tokens=chunk_tokens, overlap=min(48, chunk_tokens // 4))


def generator_options(model: str | None, key: str | None) -> dict:
    return {k: v for k, v in (("model", model), ("api_key", key)) if v}


def open_store(store: Path | None):
    """The store alone, for commands that read or change the catalogue only (no model, no torch)."""
    from loramem.store import MemoryStore

    return MemoryStore(store)


def ask_served(store: Path | None, model: str | None, args: dict) -> dict | None:
    """`Memory.ask(**args).to_dict()` as answered by a `loramem serve` running on `store` with this
    base model (loramem.handoff); None when none runs or it cannot take the question."""
    from loramem.handoff import Unreachable, ask_server, running_server
    from loramem.store import default_store_path

    server = running_server(store or default_store_path())
    if model is not None and Path(model).exists():
        model = str(Path(model).resolve())  # a folder or GGUF file is named by its full path (models/loading.py)
    if server is None or model not in (None, server["model"]):
        return None
    body = {"model": "base", "prompt": args["question"], "max_tokens": args["max_new_tokens"],
            **{k: v for k, v in args.items() if k not in ("question", "max_new_tokens", "mode_options")},
            **args["mode_options"]}
    try:
        reply = ask_server(server, body)
    except Unreachable as e:
        err_console.print(f"note: {e}; answering here", markup=False, highlight=False)
        return None
    choice, usage = reply["choices"][0], reply["usage"]
    return {"answer": choice["text"], "question": args["question"], "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"], "truncated": choice["finish_reason"] == "length",
            **reply["loramem"]}


def open_memory(store: Path | None, model: str | None = None, device: str | None = None):
    from loramem.api import Memory

    return Memory(store=store, model=model, device=device)
