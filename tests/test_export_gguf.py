"""`loramem export gguf`: memories as llama.cpp LoRA adapters. On the tiny model: the file llama.cpp
reads (type, alpha, tensor names and shapes, q/k rows interleaved as convert_hf_to_gguf does) and
the refusals. On the bundled model, end to end in llama.cpp (llama-cpp-python) with the default
model's own GGUF: the adapter changes llama.cpp's logits as it changes loramem's, and the fact
table reads back."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import FAST_TRAIN
from loramem import Memory
from loramem.errors import LoramemError
from loramem.export_gguf import export_gguf, interleave_rows
from loramem.training import TrainConfig
from test_cli import run


def _fields(path) -> tuple[dict, dict]:
    import gguf

    reader = gguf.GGUFReader(str(path))
    fields = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("GGUF.")}
    return fields, {t.name: np.array(t.data) for t in reader.tensors}


def test_the_adapter_file_is_what_llama_cpp_reads(tmp_path, tiny_model_dir, facts_jsonl, capsys):
    from loramem.adapters import load_lora

    store = str(tmp_path / "store")
    mem = Memory(store=store, model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 2, "variant": "rslora"}))
    code, out, err = run(capsys, "export", "gguf", str(tmp_path / "out"), "--store", store, "--model", str(tiny_model_dir))
    assert code == 0, err
    assert "llama-server -m BASE.gguf --lora" in out and "ollama create facts -f" in out
    assert (tmp_path / "out" / "facts.Modelfile").read_text() == "FROM BASE.gguf\nADAPTER ./facts.gguf\n"
    fields, tensors = _fields(tmp_path / "out" / "facts.gguf")
    weights = load_lora(mem.store.adapter_path(mem.store.get("facts")), torch.device("cpu"), torch.float32)
    assert (fields["general.architecture"], fields["general.type"], fields["adapter.type"]) == ("llama", "adapter", "lora")
    assert fields["adapter.lora.alpha"] == pytest.approx(weights.scale * 8)  # llama.cpp applies alpha / r: rsLoRA's scale
    config = mem.base.model.config
    expected = {}
    for path, (a, b) in weights.layers.items():
        layer, kind = int(path.split(".")[2]), path.rsplit(".", 1)[-1]
        name = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
                "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}[kind]
        heads = {"q_proj": config.num_attention_heads, "k_proj": config.num_key_value_heads}.get(kind)
        expected[f"blk.{layer}.{name}.weight.lora_a"] = a
        expected[f"blk.{layer}.{name}.weight.lora_b"] = interleave_rows(b, heads) if heads else b
    assert tensors.keys() == expected.keys()
    for name, t in expected.items():
        np.testing.assert_array_equal(tensors[name].reshape(t.shape), t.numpy())


def test_interleaving_is_convert_hf_to_gguf_permutation():
    """Row 2i of each head's half-split rotary layout goes to row i of the first half, as llama.cpp's
    converter writes q/k weights: (head, half, i) -> (head, i, half)."""
    b = torch.arange(2 * 8, dtype=torch.float32).reshape(8, 2)  # 2 heads of 4 rows
    assert interleave_rows(b, 2)[:, 0].tolist() == [0, 4, 2, 6, 8, 12, 10, 14]


def test_what_cannot_be_exported_is_refused_by_name(tmp_path, tiny_model_dir, other_tiny_model_dir, facts_jsonl):
    mem = Memory(store=tmp_path / "store", model=str(tiny_model_dir), progress=False)
    mem.write([facts_jsonl], name="facts", config=TrainConfig(**{**FAST_TRAIN, "epochs": 1}))
    other = Memory(store=tmp_path / "store", model=str(other_tiny_model_dir), progress=False)
    with pytest.raises(LoramemError, match="memory 'facts' was written on .*, not on .*: export it with --model"):
        export_gguf(other.store, other.base, tmp_path / "out")
    mem.base.model.config.model_type = "gemma3"
    try:
        with pytest.raises(LoramemError, match="not 'gemma3'"):
            export_gguf(mem.store, mem.base, tmp_path / "out")
    finally:
        mem.base.model.config.model_type = "llama"
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.real_model
def test_the_default_model_in_llama_cpp_reads_an_exported_fact_table_back(tmp_path):
    from llama_cpp import Llama

    from loramem.answering import active_adapters
    from loramem.demo import DEMO_FACTS
    from loramem.models.default import find_gguf
    from loramem.prompts import PromptFormat

    mem = Memory(store=tmp_path / "store", progress=False)
    result = mem.write([DEMO_FACTS], name="facts")
    assert result.record.recall == 1.0
    exported = export_gguf(mem.store, mem.base, tmp_path / "out")
    assert exported.base_gguf == find_gguf()
    rows = [json.loads(line) for line in DEMO_FACTS.read_text().splitlines() if line.strip()]
    fmt = PromptFormat(mem.base.tokenizer)

    def read_back(lora) -> int:
        llm = Llama(model_path=str(find_gguf()), lora_path=lora, n_ctx=512, n_threads=2, seed=0, verbose=False)
        said = [llm.create_completion(prompt=fmt.prompt_ids(r["question"]), max_tokens=24, temperature=0.0,
                                      top_k=1)["choices"][0]["text"].strip() for r in rows]
        return sum(s.startswith(str(r["answer"])) for s, r in zip(said, rows))

    assert read_back(str(exported.files["facts"])) == len(rows)
    assert read_back(None) == 0  # the base model alone knows none of them

    # The adapter moves llama.cpp's logits as it moves loramem's (q/k rows interleaved right: 0.998
    # here; left in loramem's order, 0.98 and logits off by 12 where they are now off by 2).
    ids = fmt.prompt_ids(rows[0]["question"]) + mem.base.tokenizer(rows[0]["answer"])["input_ids"]

    def llama_logits(lora) -> np.ndarray:
        llm = Llama(model_path=str(find_gguf()), lora_path=lora, n_ctx=512, n_threads=2, logits_all=True, verbose=False)
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)])

    with torch.no_grad():
        plain = mem.base.model(torch.tensor([ids])).logits[0].numpy()
        with active_adapters(mem.base.model, [("facts", mem.store.adapter_path(mem.store.get("facts")))]) as model:
            ours = model(torch.tensor([ids])).logits[0].numpy()
    theirs = llama_logits(str(exported.files["facts"])) - llama_logits(None)
    assert np.corrcoef((ours - plain).ravel(), theirs.ravel())[0, 1] > 0.995
