"""Raw next-token and deep context distillation objectives."""

import pytest
import torch

from conftest import FAST_TRAIN
from loramem.prompts import PromptFormat
from loramem.supervision import Example
from loramem.training import TrainConfig, train_memory
from loramem.training.batching import encode, make_batches
from loramem.training.distill import TeacherTargets, teacher_targets
from loramem.training.loss import supervised_forward
from loramem.training.objectives import example_objective

CHUNK = "The Velmont Observatory opened in 1887. Its first director was Edda Falkenrath."
QA = Example("When did the Velmont Observatory open?", "1887", kind="qa", chunk=CHUNK)
RAW = Example("Recite it.", CHUNK, kind="raw", chunk=CHUNK)
RECORD = Example("What is the phone number of Ada Byron?", "555-010-1234", kind="record")


def test_which_objective_each_example_gets():
    assert [example_objective("auto", e) for e in (QA, RAW, RECORD)] == ["answer", "next-token", "answer"]
    assert [example_objective("distill", e) for e in (QA, RAW, RECORD)] == ["distill", "next-token", "answer"]
    assert [example_objective("next-token", e) for e in (QA, RAW, RECORD)] == ["next-token"] * 3


def test_raw_text_is_plain_language_modelling(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    (raw,) = encode(fmt, [RAW])
    text_ids = tiny_base.tokenizer(CHUNK, add_special_tokens=False)["input_ids"]
    assert raw.ids == [tiny_base.tokenizer.bos_token_id] + text_ids and raw.n_prompt == 1  # every text token supervised
    (qa,) = encode(fmt, [QA], objective="distill")
    assert qa.ids[qa.n_prompt:] == qa.teacher_ids[qa.teacher_n_prompt:]  # same target tokens
    teacher_prompt = tiny_base.tokenizer.decode(qa.teacher_ids[: qa.teacher_n_prompt])
    assert CHUNK in teacher_prompt and CHUNK not in tiny_base.tokenizer.decode(qa.ids)


def test_distillation_toward_a_one_hot_teacher_is_cross_entropy(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    examples = [QA, RECORD]
    encoded = encode(fmt, examples, objective="distill")
    (batch,) = make_batches(encoded, 8, fmt.end_id)
    plain = supervised_forward(tiny_base.model, batch)
    n_target = len(encoded[0].ids) - encoded[0].n_prompt
    labels = torch.tensor(encoded[0].ids[encoded[0].n_prompt:])
    vocab = tiny_base.model.config.vocab_size
    everything = torch.arange(vocab).repeat(n_target, 1)  # top-k = the whole vocabulary
    one_hot = {0: TeacherTargets(everything, torch.nn.functional.one_hot(labels, vocab).float(), None)}
    distilled = supervised_forward(tiny_base.model, batch, one_hot)
    torch.testing.assert_close(distilled.loss, plain.loss)
    soft = {0: TeacherTargets(everything, torch.full((n_target, vocab), 1.0 / vocab), None)}
    assert not torch.allclose(supervised_forward(tiny_base.model, batch, soft).loss, plain.loss)


def test_teacher_rows_align_with_target_tokens(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    encoded = encode(fmt, [QA, RECORD, Example("Who directed it?", "Edda Falkenrath", chunk=CHUNK)], "distill")
    targets = teacher_targets(tiny_base.model, encoded, fmt.end_id, top_k=8, hidden=True, progress=False)
    assert sorted(targets) == [0, 2]  # the record has no document to distill from
    for i, t in targets.items():
        n = len(encoded[i].ids) - encoded[i].n_prompt
        assert t.top_ids.shape == (n, 8) and t.hidden.shape == (n, 2, 64)
        torch.testing.assert_close(t.top_probs.sum(-1), torch.ones(n))
        # the teacher sees the document: its top-1 matches the base model's own prediction in context
        with torch.no_grad():
            ids = torch.tensor([encoded[i].teacher_ids])
            logits = tiny_base.model(ids).logits[0, encoded[i].teacher_n_prompt - 1 : -1]
        assert torch.equal(t.top_ids[:, 0], logits.argmax(-1))


@pytest.mark.parametrize("hidden", [0.0, 0.5])
def test_distillation_trains_the_student_toward_the_teacher(tiny_base, tmp_path, hidden):
    from loramem.answering import active_adapters

    examples = [QA, Example("Who was the first director?", "Edda Falkenrath", chunk=CHUNK)]
    config = TrainConfig(**{**FAST_TRAIN, "epochs": 60, "objective": "distill", "distill_hidden": hidden})
    fmt = PromptFormat(tiny_base.tokenizer)
    encoded = encode(fmt, examples, "distill")
    targets = teacher_targets(tiny_base.model, encoded, fmt.end_id, progress=False)
    (batch,) = make_batches(encoded, 8, fmt.end_id)
    # Cross-entropy to the teacher minus the teacher's entropy is the KL the student minimizes.
    probs = torch.cat([t.top_probs for t in targets.values()])
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum(-1).mean().item()
    kl_before = supervised_forward(tiny_base.model, batch, targets).loss.item() - entropy
    train_memory(tiny_base, examples, config, tmp_path / "a", progress=False)
    with active_adapters(tiny_base.model, [("a", tmp_path / "a")]) as model, torch.no_grad():
        kl_after = supervised_forward(model, batch, targets).loss.item() - entropy
    assert kl_after < 0.5 * kl_before


def test_teacher_targets_restores_train_mode_when_the_teacher_fails(tiny_base):
    fmt = PromptFormat(tiny_base.tokenizer)
    encoded = encode(fmt, [QA], objective="distill")

    def fail(module, args):
        raise RuntimeError("out of memory (injected)")

    hook = tiny_base.model.model.register_forward_pre_hook(fail)
    tiny_base.model.train()
    try:
        with pytest.raises(RuntimeError, match="injected"):
            teacher_targets(tiny_base.model, encoded, fmt.end_id, progress=False)
        assert tiny_base.model.training  # left in the caller's mode, not in eval
    finally:
        hook.remove()
        tiny_base.model.eval()
