"""`summary` and `rewrite`: N generated views of each chunk, each trained as the answer to a request.

A view is kept when it is long enough and most of its words occur in the chunk (a view that
invents a story is dropped); duplicates are dropped.
"""

from __future__ import annotations

from loramem.supervision.examples import Example
from loramem.supervision.formats.base import FORMATS, Format, Made, supported
from loramem.supervision.templates import load_template

MIN_WORDS = 8


class GeneratedTextFormat(Format):
    request = ""  # the prompt a view is trained under, e.g. 'Summarize {label}'
    support = 0.6

    def make(self, part, n, generator, seed):
        passage = part.chunk.text
        prompt = load_template(self.template).render(title=part.title, passage=passage)
        views: list[str] = []
        for text in generator.complete(prompt, n=n, seed=seed):
            text = " ".join(text.split())
            if len(text.split()) >= MIN_WORDS and supported(text, passage, self.support) and text not in views:
                views.append(text)
        examples = [
            Example(prompt=self.request.format(label=part.label()) + (f" (version {i + 1})" if i else ""),
                    target=view, kind=self.name, chunk=passage)
            for i, view in enumerate(views)
        ]
        note = f"{part.label()}: kept {len(views)} of {n} {self.name} texts" if len(views) < n else ""
        return Made(examples, note)


@FORMATS.register("summary")
class SummaryFormat(GeneratedTextFormat):
    name = "summary"
    template = "summary"
    request = "Summarize {label}."


@FORMATS.register("rewrite")
class RewriteFormat(GeneratedTextFormat):
    name = "rewrite"
    template = "rewrite"
    request = "Retell {label} in other words."
    support = 0.5
