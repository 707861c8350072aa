"""Any OpenAI-compatible chat endpoint as a generator, with bounded retries and clear errors."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import httpx

from loramem.errors import LoramemError
from loramem.supervision.generators.base import Generator


class GeneratorError(LoramemError):
    """The generator endpoint is down, too slow, refuses us, or answers with something unusable."""


@dataclass
class HTTPGenerator(Generator):
    """POST {url}/chat/completions. Model and key come from arguments, else the environment.

    Environment: LORAMEM_GENERATOR_MODEL, LORAMEM_GENERATOR_KEY (else OPENAI_API_KEY).
    Without a model name the server's first model from GET {url}/models is used.
    """

    url: str
    model: str | None = None
    api_key: str | None = None
    timeout: float = 120.0
    attempts: int = 3
    max_tokens: int = 512
    temperature: float = 0.8
    backoff: float = 0.5
    _client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.model = self.model or os.environ.get("LORAMEM_GENERATOR_MODEL")
        self.api_key = self.api_key or os.environ.get("LORAMEM_GENERATOR_KEY") or os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        self._client = httpx.Client(timeout=self.timeout, headers=headers)

    @property
    def id(self) -> str:
        return f"{self.url}|{self.resolved_model()}|{self.max_tokens}|{self.temperature}"

    def resolved_model(self) -> str:
        if not self.model:
            listing = self._request("GET", "/models")
            try:
                self.model = str(listing["data"][0]["id"])
            except (KeyError, IndexError, TypeError):
                raise GeneratorError(
                    f"generator {self.url}: no model given and GET /models lists none; "
                    "pass --generator-model or set LORAMEM_GENERATOR_MODEL"
                ) from None
        return self.model

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        """One JSON request, retried on connection errors, timeouts, 429/5xx and junk bodies."""
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.request(method, self.url + path, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within {self.timeout:g} s"
                continue
            except httpx.HTTPError as e:
                problem = f"cannot connect ({e.__class__.__name__}: {e})"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}: {response.text[:200]!r}"
                continue
            if response.status_code >= 400:  # our request is wrong: retrying will not help
                raise GeneratorError(f"generator {self.url}{path}: HTTP {response.status_code}: {response.text[:300]!r}")
            try:
                data = response.json()
                if isinstance(data, dict):
                    return data
            except ValueError:
                pass
            problem = f"answered with something that is not JSON: {response.text[:120]!r}"
        raise GeneratorError(f"generator {self.url}{path}: {problem} (gave up after {self.attempts} attempts)")

    def _chat(self, prompt: str, temperature: float, seed: int) -> str:
        body = {
            "model": self.resolved_model(),
            "messages": [{"role": "user", "content": prompt}],
            "temperature": temperature,
            "max_tokens": self.max_tokens,
            "seed": seed,
        }
        problem = ""
        for _ in range(self.attempts):
            data = self._request("POST", "/chat/completions", body)
            try:
                content = data["choices"][0]["message"]["content"]
                if isinstance(content, str):
                    return content
            except (KeyError, IndexError, TypeError):
                pass
            problem = f"the reply is not a chat completion: {str(data)[:160]!r}"
        raise GeneratorError(f"generator {self.url}: {problem} (gave up after {self.attempts} attempts)")

    def complete(self, prompt: str, n: int = 1, seed: int = 0, sample: bool = False) -> list[str]:
        return [self._chat(prompt, self.temperature if sample or i else 0.0, seed + i) for i in range(n)]
