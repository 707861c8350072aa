"""The trainer (training/trainer.py), one memory or several in one batch, trains each memory as a
plain PEFT loop trains it alone (peft_reference.py): the same initial LoRA, per-step losses and
gradients, weights after several epochs, saved folder."""

import json

import pytest
import torch
from peft import set_peft_model_state_dict
from peft_reference import peft_train
from safetensors.torch import load_file

from conftest import FAST_TRAIN
from loramem.adapters import LoraWeights
from loramem.adapters.batched import batched_lora
from loramem.errors import LoramemError
from loramem.prompts import PromptFormat
from loramem.supervision import Example
from loramem.training import MemoryJob, TrainConfig, train_memories, train_memory
from loramem.training.batching import encode, make_batches
from loramem.training.distill import teacher_targets
from loramem.training.lora_state import PEFT_PREFIX, attached_lora, initial_lora
from loramem.training.loss import supervised_forward
from loramem.training.multi_batch import Piece, multi_forward
from loramem.training.packing import packing_pays

FACTS = [
    Example("What is the phone number of Ada Byron?", "555-010-1234"),
    Example("What is the phone number of Alan Turing?", "555-867-5309"),
    Example("What is the phone number of Grace Hopper?", "555-246-8100"),
]
MORE = [Example(f"What is the phone number of Person {i}?", f"555-{i:03d}-{7 * i:04d}") for i in range(6)]
CHUNK = "Ada Byron wrote the first program. Her number is 555-010-1234."
DISTILLED = [Example("Who wrote the first program?", "Ada Byron", chunk=CHUNK),
             Example("What is Ada's number?", "555-010-1234", chunk=CHUNK)]


def _state(layers: dict) -> dict:
    return {f"{PEFT_PREFIX}{p}.lora_{w}.weight": t for p, (a, b) in layers.items() for w, t in (("A", a), ("B", b))}


def test_initial_lora_is_the_one_train_memory_starts_from(tiny_base):
    config = TrainConfig(**{**FAST_TRAIN, "seed": 3})
    init = initial_lora(tiny_base.model, config)
    with attached_lora(tiny_base.model, config) as peft_model:
        from peft import get_peft_model_state_dict

        expected = get_peft_model_state_dict(peft_model)
    got = _state(init)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in got)
    assert any(a.abs().sum() > 0 for a, _ in init.values()) and all(b.abs().sum() == 0 for _, b in init.values())
    other = initial_lora(tiny_base.model, TrainConfig(**{**FAST_TRAIN, "seed": 4}))
    assert not all(torch.equal(init[p][0], other[p][0]) for p in init)


def test_batched_step_gives_each_memory_its_own_loss_and_gradients(tiny_base):
    """Three memories in one forward (a packed batch, a padded one, a distilled one with hidden
    states; mixed ranks): each memory's loss and LoRA gradients equal its step alone through PEFT."""
    model, fmt = tiny_base.model, PromptFormat(tiny_base.tokenizer)
    specs = [(FACTS[:2], dict(rank=4), "answer"), (MORE[:4], dict(rank=8), "answer"),
             (DISTILLED, dict(rank=2, distill_hidden=0.5), "distill")]
    memories = []
    for j, (examples, settings, objective) in enumerate(specs):
        config = TrainConfig(**{**FAST_TRAIN, **settings, "seed": j, "objective": objective})
        encoded = encode(fmt, examples, objective)
        batch = make_batches(encoded, len(examples), fmt.end_id)[0]
        teacher = teacher_targets(model, encoded, fmt.end_id, hidden=config.distill_hidden > 0, progress=False)
        g = torch.Generator().manual_seed(10 + j)  # B is zero at PEFT's init: give it values, so A gets gradients
        layers = {p: (a, torch.randn(b.shape, generator=g) * 0.05) for p, (a, b) in initial_lora(model, config).items()}
        memories.append((config, batch, teacher, layers))
    assert [packing_pays(m[1], model.config) for m in memories[:2]] == [True, False]  # both layouts

    weights = [LoraWeights({p: (a.clone().requires_grad_(), b.clone().requires_grad_()) for p, (a, b) in layers.items()},
                           config.lora_alpha / config.rank) for config, _, _, layers in memories]
    with batched_lora(model, weights) as set_rows:
        pieces = [Piece(batch, j, teacher, config.distill_hidden) for j, (config, batch, teacher, _) in enumerate(memories)]
        outs = multi_forward(model, pieces, set_rows, fmt.end_id)
        torch.stack([o.loss for o in outs]).sum().backward()

    for (config, batch, teacher, layers), w, out in zip(memories, weights, outs):
        with attached_lora(model, config) as peft_model:
            set_peft_model_state_dict(peft_model, _state(layers))
            alone = supervised_forward(peft_model.get_base_model(), batch, teacher, config.distill_hidden)
            alone.loss.backward()
            grads = {n: p.grad for n, p in peft_model.named_parameters() if p.requires_grad}
        torch.testing.assert_close(out.loss.detach(), alone.loss.detach(), rtol=1e-5, atol=1e-6)
        assert torch.equal(out.correct, alone.correct) and out.n_targets == alone.n_targets
        for path, (a, b) in w.layers.items():
            expected_a = grads[f"{PEFT_PREFIX}{path}.lora_A.default.weight"]
            assert expected_a.abs().max() > 0
            torch.testing.assert_close(a.grad, expected_a, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(b.grad, grads[f"{PEFT_PREFIX}{path}.lora_B.default.weight"], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("budget", [None, 1], ids=["one-forward", "a-forward-each"])
def test_memories_trained_batched_end_as_each_trained_alone(tiny_base, tmp_path, monkeypatch, budget):
    """Three memories, two at a time: different data, seeds and epoch limits, so they leave at
    different steps and the third joins midway; each ends with the steps, weights and saved
    folder a plain PEFT loop gives it alone (and train_memory, a batch of one), whether a step runs
    them in one forward or, past the attention budget, in a forward each."""
    from loramem.training import multi_batch, trainer

    if budget is not None:
        monkeypatch.setattr(multi_batch, "ATTENTION_BUDGET", budget)
    calls = []  # memories per forward
    monkeypatch.setattr(trainer, "multi_forward", lambda *a, f=trainer.multi_forward: calls.append(len(a[1])) or f(*a))
    runs = [(FACTS, dict(epochs=2, seed=0)), (MORE, dict(epochs=3, seed=1, batch_size=2)),
            (FACTS[:2] + MORE[:3], dict(epochs=4, seed=2, variant="rslora"))]  # a LoRA variant: PEFT's use_rslora
    jobs = [MemoryJob(ex, TrainConfig(**{**FAST_TRAIN, **s}), tmp_path / f"batched{i}") for i, (ex, s) in enumerate(runs)]
    epochs_seen: list[tuple[int, int]] = []
    jobs[1].on_epoch = lambda epoch, seconds: epochs_seen.append((1, epoch))
    done: list[int] = []
    batched = train_memories(tiny_base, jobs, batch_memories=2, progress=False, on_done=lambda i, r: done.append(i))
    assert done == [0, 1, 2] and epochs_seen == [(1, 1), (1, 2), (1, 3)]
    assert max(calls) == (2 if budget is None else 1)
    for i, job in enumerate(jobs):
        reference = peft_train(tiny_base, job.examples, job.config, tmp_path / f"peft{i}")
        alone = train_memory(tiny_base, job.examples, job.config, tmp_path / f"alone{i}", progress=False)
        for got in (batched[i], alone):
            assert (got.epochs, got.steps, got.processed_tokens) == (
                reference.epochs, reference.steps, reference.processed_tokens)
            assert got.recall == pytest.approx(reference.recall)
        assert (batched[i].tokens, batched[i].parameters, batched[i].n_examples) == (
            alone.tokens, alone.parameters, alone.n_examples)
        ref = load_file(tmp_path / f"peft{i}" / "adapter_model.safetensors")
        assert max(v.abs().max() for v in ref.values()) > 0.05  # it trained
        for way in ("batched", "alone"):
            got = load_file(tmp_path / f"{way}{i}" / "adapter_model.safetensors")
            assert got.keys() == ref.keys()
            for k in got:
                torch.testing.assert_close(got[k], ref[k], rtol=1e-4, atol=1e-5)
        folders = [tmp_path / f"{w}{i}" for w in ("batched", "alone", "peft")]
        files = [{p.name for p in f.iterdir()} for f in folders]
        assert files[0] == files[1] == files[2] | {"loramem-magnitudes.safetensors"}  # PEFT's, and the TIES thresholds
        assert len({json.dumps(json.loads((f / "adapter_config.json").read_text()), sort_keys=True)
                    for f in folders}) == 1
    assert all(not p.requires_grad and p.grad is None for p in tiny_base.model.parameters())


def test_a_memory_that_reads_back_stops_early_and_leaves_the_batch(tiny_base, tmp_path):
    config = TrainConfig(**FAST_TRAIN)
    longer = TrainConfig(**{**FAST_TRAIN, "epochs": 60})  # still training when the first memory is done
    jobs = [MemoryJob(FACTS, config, tmp_path / "a"), MemoryJob(MORE, longer, tmp_path / "b")]
    results = train_memories(tiny_base, jobs, batch_memories=2, progress=False)
    alone = peft_train(tiny_base, FACTS, config, tmp_path / "alone")
    assert results[0].recall == 1.0 and results[0].epochs < min(config.epochs, results[1].epochs)
    assert results[0].epochs == alone.epochs and results[0].steps == alone.steps


def test_bf16_training_saves_fp32_verified_memories(tiny_base, tmp_path):
    config = TrainConfig(**{**FAST_TRAIN, "precision": "bf16"})
    jobs = [MemoryJob(FACTS, config, tmp_path / "a"), MemoryJob(MORE[:3], config, tmp_path / "b")]
    results = train_memories(tiny_base, jobs, batch_memories=2, progress=False)
    assert all(r.recall > 0 for r in results)
    assert all(p.dtype == torch.float32 for p in tiny_base.model.parameters())
    assert all(v.dtype == torch.float32 for v in load_file(tmp_path / "a" / "adapter_model.safetensors").values())


def test_bad_batched_writes_are_refused(tiny_base, tmp_path):
    job = MemoryJob(FACTS, TrainConfig(**FAST_TRAIN), tmp_path / "a")
    with pytest.raises(LoramemError, match="at least 1"):
        train_memories(tiny_base, [job], batch_memories=0, progress=False)
    with pytest.raises(LoramemError, match="no examples"):
        train_memories(tiny_base, [job, MemoryJob([], job.config, tmp_path / "b")], progress=False)


def _facts_file(path, rows):
    path.write_text("".join(json.dumps({"question": e.prompt, "answer": e.target}) + "\n" for e in rows))
    return path


def test_a_collection_written_batched_answers_as_one_written_memory_by_memory(tmp_path, tiny_model_dir):
    from loramem import Memory

    files = [_facts_file(tmp_path / "people.jsonl", FACTS), _facts_file(tmp_path / "more.jsonl", MORE[:4]),
             _facts_file(tmp_path / "mixed.jsonl", FACTS[:1] + MORE[4:])]
    config = TrainConfig(**FAST_TRAIN)
    written = {}
    for n in (1, 2):
        mem = Memory(store=tmp_path / f"store{n}", model=str(tiny_model_dir), progress=False)
        epochs: list[int] = []
        written[n] = (mem, mem.write_collection(files, "pb", batch_memories=n, config=config,
                                                on_epoch=lambda e, s, seen=epochs: seen.append(e)), epochs)
    (alone, one_by_one, epochs_1), (batched_mem, batched, epochs_2) = written[1], written[2]
    assert sorted(epochs_1) == sorted(epochs_2)  # on_epoch reaches every memory's epochs
    assert [w.record.name for w in batched] == ["pb-people", "pb-more", "pb-mixed"]
    for a, b in zip(one_by_one, batched):
        ra, rb = a.record, b.record
        assert (ra.name, ra.collection, ra.examples, ra.tokens, ra.parameters, ra.sources, ra.source_hash) == (
            rb.name, rb.collection, rb.examples, rb.tokens, rb.parameters, rb.sources, rb.source_hash)
        assert rb.recall == pytest.approx(ra.recall) and a.epochs == b.epochs and b.seconds > 0
        assert {k: v for k, v in ra.config.items() if k != "train_seconds"} == {
            k: v for k, v in rb.config.items() if k != "train_seconds"}
        assert batched_mem.show(rb.name).folder == rb.folder  # in the catalogue, committed as write commits
    assert one_by_one[0].record.recall == 1.0  # a memory that reads back its facts
    for examples, name in ((FACTS, "pb-people"), (MORE[:4], "pb-more"), (FACTS[:1] + MORE[4:], "pb-mixed")):
        for e in examples:
            assert (batched_mem.ask(e.prompt, memories=[name], max_new_tokens=12).answer
                    == alone.ask(e.prompt, memories=[name], max_new_tokens=12).answer)


def test_batched_collection_checks_names_before_training(tmp_path, tiny_model_dir):
    from loramem import Memory

    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    path = _facts_file(tmp_path / "people.jsonl", FACTS)
    mem.write([path], name="pb-01", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    with pytest.raises(LoramemError, match="already exists"):
        mem.write_collection([path], "pb", split=2, batch_memories=2, config=TrainConfig(**FAST_TRAIN))
    assert [r.name for r in mem.list()] == ["pb-01"]  # pb-00 was not trained and committed meanwhile
    assert not any((tmp_path / "store" / ".staging").iterdir())


def test_write_collection_command_takes_batch_memories(tmp_path, tiny_model_dir, monkeypatch):
    from typer.testing import CliRunner

    from loramem import Memory
    from loramem.cli import app

    files = [_facts_file(tmp_path / "people.jsonl", FACTS), _facts_file(tmp_path / "more.jsonl", MORE[:2])]
    passed = []
    original = Memory.write_collection
    monkeypatch.setattr(Memory, "write_collection",
                        lambda self, *a, **kw: passed.append(kw["batch_memories"]) or original(self, *a, **kw))
    result = CliRunner().invoke(app, ["write", *map(str, files), "--collection", "pb", "--batch-memories", "2",
                                      "--epochs", "2", "--precision", "fp32", "--store", str(tmp_path / "store"),
                                      "--model", str(tiny_model_dir)])
    assert result.exit_code == 0, result.output
    assert passed == [2] and "wrote pb-people" in result.output and "wrote pb-more" in result.output


@pytest.mark.parametrize("batched", [False, True])
def test_a_bf16_write_stops_on_what_the_fp32_model_reads_back(tiny_base, tmp_path, monkeypatch, batched):
    """Training runs on a bf16 copy; the read-back that ends the write runs on the fp32 model that answers."""
    from loramem.training import readback, run, trainer

    dtypes = []

    def spying(model, batches, n):
        dtypes.append(next(model.parameters()).dtype)
        return readback.read_back(model, batches, n)

    monkeypatch.setattr(trainer, "read_back", spying)
    monkeypatch.setattr(run, "read_back", spying)
    config = TrainConfig(**{**FAST_TRAIN, "precision": "bf16"})
    if batched:
        (result,) = train_memories(tiny_base, [MemoryJob(FACTS, config, tmp_path / "a")], batch_memories=2, progress=False)
    else:
        result = train_memory(tiny_base, FACTS, config, tmp_path / "a", progress=False)
    assert result.recall == 1.0 and result.epochs < config.epochs  # stopped early, at its target
    assert dtypes and set(dtypes) == {torch.float32}
