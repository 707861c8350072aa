"""`raw`: the chunk's own text, trained with plain next-token prediction (the paper's "Original")."""

from __future__ import annotations

from loramem.supervision.examples import Example
from loramem.supervision.formats.base import FORMATS, Format, Made


@FORMATS.register("raw")
class RawFormat(Format):
    name = "raw"
    takes_count = False
    uses_generator = False

    def make(self, part, n, generator, seed):
        text = part.chunk.text
        return Made([Example(prompt=f"Recite {part.label()}.", target=text, kind="raw", chunk=text)])
