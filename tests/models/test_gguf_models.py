"""`--model FILE.gguf`: a user's GGUF chat model becomes a base model, converted once and cached
under the file's checksum; files that cannot be are refused in one line, leaving no half-written
folder in the cache."""

from __future__ import annotations

import pytest

from loramem.errors import LoramemError
from loramem.models import load_base
from loramem.models.default import find_gguf


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_files_that_are_not_whole_gguf_models_are_refused(tmp_path, cache):
    (tmp_path / "notes.gguf").write_text("not a model")
    (tmp_path / "cut.gguf").write_bytes(find_gguf().read_bytes()[: 3 << 20])  # a download cut short
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(tmp_path / "other.gguf"), "bogus")  # an architecture transformers lacks
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    cases = {"missing.gguf": "does not exist", "notes.gguf": "is not a GGUF file",
             "cut.gguf": "cannot convert .*cut.gguf .*truncated or damaged",
             "other.gguf": "cannot convert .*other.gguf .*architecture bogus is not supported"}
    for name, message in cases.items():
        with pytest.raises(LoramemError, match=message) as refused:
            load_base(str(tmp_path / name))
        assert "\n" not in str(refused.value)
    left = sorted(p.name for p in cache.iterdir()) if cache.exists() else []
    assert left in ([], ["checksums.json"])  # no converted folder, no temporary one


@pytest.mark.real_model
def test_a_gguf_file_is_converted_once_and_is_the_model_it_holds(tmp_path, monkeypatch):
    """The default model's own GGUF, given as a file: the same weights as the embedded default
    (the same fingerprint), its chat template kept, converted once under its checksum."""
    from loramem.api import Memory
    from loramem.demo import DEMO_FACTS
    from loramem.export_gguf import export_gguf

    default = load_base()  # from the usual cache
    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "models"
    given = load_base(str(find_gguf()))
    assert given.fingerprint == default.fingerprint and given.name == str(find_gguf().resolve())
    assert given.tokenizer.chat_template == default.tokenizer.chat_template
    folders = [p for p in cache.iterdir() if p.is_dir()]
    assert len(folders) == 1 and folders[0].name.startswith(find_gguf().stem)
    again = load_base(str(find_gguf()))
    assert again.fingerprint == given.fingerprint and [p for p in cache.iterdir() if p.is_dir()] == folders

    mem = Memory(store=tmp_path / "store", base=given, progress=False)
    mem.write([DEMO_FACTS], name="facts")
    assert mem.show("facts").base_model == str(find_gguf().resolve())
    assert export_gguf(mem.store, given, tmp_path / "out").base_gguf == find_gguf().resolve()
