"""The server's extra request fields for mode options come from the modes' settings dataclasses."""

from __future__ import annotations

import pydantic
import pytest

from loramem.modes import mode_options
from loramem.serve import openai_schema as oa

MESSAGES = [{"role": "user", "content": "Who?"}]


@pytest.mark.parametrize("option", mode_options(), ids=lambda o: o.name)
def test_every_mode_option_is_a_typed_request_field(option):
    value = option.option.choices[-1] if option.option.choices else option.option.type(option.option.default)
    for request in (oa.ChatRequest(model="m", messages=MESSAGES, **{option.name: value}),
                    oa.CompletionRequest(model="m", prompt="Who?", **{option.name: value})):
        assert request.mode_options() == {option.name: value}
    assert oa.ChatRequest.model_fields[option.name].description == option.help
    if option.option.type is not str:
        with pytest.raises(pydantic.ValidationError):
            oa.ChatRequest(model="m", messages=MESSAGES, **{option.name: "not a number"})


def test_unset_mode_options_are_left_to_the_mode():
    assert oa.ChatRequest(model="m", messages=MESSAGES, temperature=0.3).mode_options() == {}
