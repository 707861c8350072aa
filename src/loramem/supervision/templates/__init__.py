"""Prompt templates for generated supervision, one file per format.

A template's version is a hash of its text, so editing a prompt invalidates the cached
supervision made with the old one and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class Template:
    name: str
    text: str

    @property
    def version(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def render(self, **fields) -> str:
        return self.text.format(**fields)


@cache
def load_template(name: str) -> Template:
    return Template(name, resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8"))
