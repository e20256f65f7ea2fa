"""Chat LLMs the answering pipeline can speak to: any OpenAI-compatible server, or an offline test double.

The pipeline treats the LLM as optional and unreliable: every failure (timeout, refused
connection, HTTP error, an answer with no text) surfaces as :class:`LLMError`, which the
pipeline catches to fall back to the extractive composer. Nothing here downloads anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import httpx
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

Role = Literal["system", "user", "assistant"]


class ChatMessage(BaseModel):
    role: Role
    content: str


class LLMError(RuntimeError):
    """The LLM could not give an answer (timeout, connection, HTTP status, empty or malformed reply).

    ``notice`` may carry a citizen-facing sentence (in the request's language) that the pipeline
    shows on the fallback answer; the composer fills it, the transport layer does not know the language.
    """

    def __init__(self, message: str, *, notice: str | None = None) -> None:
        super().__init__(message)
        self.notice = notice


@runtime_checkable
class LLM(Protocol):
    """What the composers need from a chat model. Implementations raise only :class:`LLMError`."""

    model_id: str

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0) -> str: ...

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]: ...


# --------------------------------------------------------------------------------------------
# OpenAI-compatible servers (vLLM, llama.cpp server, Ollama, Azure OpenAI, OpenAI itself)
# --------------------------------------------------------------------------------------------


def _to_openai(message: ChatMessage) -> ChatCompletionMessageParam:
    if message.role == "system":
        return {"role": "system", "content": message.content}
    if message.role == "user":
        return {"role": "user", "content": message.content}
    return {"role": "assistant", "content": message.content}


class OpenAICompatibleLLM:
    """Chat completions over the OpenAI wire format via the ``openai`` client.

    ``max_retries`` is the client's own retry (with backoff) for connection errors, timeouts,
    408/409/429 and 5xx; it only covers opening a request, not a stream that breaks midway.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "not-needed",
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        self.model_id = model
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        # the client never sends a request at construction, so a wrong URL only fails on use
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)

    def __repr__(self) -> str:  # never show the api key
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model_id!r}, timeout={self.timeout})"

    def _error(self, exc: BaseException) -> LLMError:
        """Translate a client/transport exception into one clear LLMError message."""
        where = f"LLM {self.model_id!r} at {self.base_url}"
        if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
            return LLMError(f"{where} timed out (timeout {self.timeout:g}s, {self.max_retries} retries)")
        if isinstance(exc, (openai.APIConnectionError, httpx.TransportError)):
            return LLMError(f"{where} is unreachable: {exc.__cause__ or exc}")
        if isinstance(exc, openai.APIStatusError):
            return LLMError(f"{where} answered HTTP {exc.status_code}: {str(exc.message)[:300]}")
        return LLMError(f"{where} gave a bad response: {type(exc).__name__}: {str(exc)[:300]}")

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0) -> str:
        try:
            response = self._client.chat.completions.create(
                model=self.model_id,
                messages=[_to_openai(m) for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
                stream=False,
            )
        # OpenAIError covers status, connection, timeout and response-validation errors;
        # ValueError covers a body that is not the JSON the client expects
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
            raise self._error(exc) from exc
        if not isinstance(response, ChatCompletion):
            # e.g. a proxy's HTML error page served with status 200: the client hands back the raw body
            raise LLMError(
                f"LLM {self.model_id!r} at {self.base_url} returned a non-JSON body: {str(response)[:200]!r}"
            )
        if not response.choices:
            raise LLMError(f"LLM {self.model_id!r} at {self.base_url} returned no choices")
        content = response.choices[0].message.content
        if not content or not content.strip():
            reason = response.choices[0].finish_reason
            raise LLMError(f"LLM {self.model_id!r} at {self.base_url} returned an empty reply (finish_reason={reason})")
        return content

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        produced = False
        try:
            chunks = self._client.chat.completions.create(
                model=self.model_id,
                messages=[_to_openai(m) for m in messages],
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
            )
            # the context manager closes the HTTP response even if the consumer stops early
            with chunks:
                for chunk in chunks:
                    # servers send chunks without choices (usage, keep-alive) and deltas without text
                    if not chunk.choices:
                        continue
                    delta = chunk.choices[0].delta.content
                    if delta:
                        produced = True
                        yield delta
        # errors while iterating are raw httpx errors (the client only wraps the opening request)
        except (openai.OpenAIError, httpx.HTTPError, ValueError) as exc:
            raise self._error(exc) from exc
        if not produced:
            raise LLMError(f"LLM {self.model_id!r} at {self.base_url} streamed an empty reply")


# --------------------------------------------------------------------------------------------
# Offline test double
# --------------------------------------------------------------------------------------------

#: a numbered passage block in a prompt: "[n] header line", then body lines up to a blank line or the next [n]
_PASSAGE_BLOCK = re.compile(r"^\[(\d+)\][ \t]*(.*?)(?=^\[\d+\]|\n[ \t]*\n|\Z)", re.MULTILINE | re.DOTALL)

DEFAULT_NO_PASSAGE_REPLY = "わかりません。"


@dataclass
class TestModelCall:
    messages: list[ChatMessage]
    max_tokens: int
    temperature: float
    stream: bool


@dataclass
class TestModel:
    """Deterministic offline LLM for tests (in the spirit of pydantic-ai's ``TestModel``).

    * ``reply``: a fixed reply, or a function of the messages; by default the reply quotes the
      first body line of passage ``[1]`` in the last user message and cites it: ``"<line> [1]"``
      (``no_passage_reply`` when the prompt has no numbered passage).
    * ``error``: raise it (an ``LLMError`` or a message for one) on every call, to test fallbacks.
    * ``calls``: every call received, in order.
    * ``chunk_size``: characters per streamed delta, so streaming consumers see several deltas.
    """

    # pytest would otherwise try to collect this class from test modules that import it
    __test__ = False

    reply: str | Callable[[Sequence[ChatMessage]], str] | None = None
    error: LLMError | str | None = None
    chunk_size: int = 4
    no_passage_reply: str = DEFAULT_NO_PASSAGE_REPLY
    model_id: str = "test-model"
    calls: list[TestModelCall] = field(default_factory=list)

    def _answer(self, messages: Sequence[ChatMessage], *, max_tokens: int, temperature: float, stream: bool) -> str:
        self.calls.append(TestModelCall(list(messages), max_tokens, temperature, stream))
        if self.error is not None:
            raise self.error if isinstance(self.error, LLMError) else LLMError(self.error)
        if callable(self.reply):
            return self.reply(messages)
        if self.reply is not None:
            return self.reply
        return self.default_reply(messages)

    def default_reply(self, messages: Sequence[ChatMessage]) -> str:
        user = next((m.content for m in reversed(messages) if m.role == "user"), "")
        for match in _PASSAGE_BLOCK.finditer(user):
            lines = [line.strip() for line in match.group(2).splitlines() if line.strip()]
            if not lines:
                continue
            # line 0 is the passage header (its title) when the block has a body below it
            text = lines[1] if len(lines) > 1 else lines[0]
            return f"{text} [{match.group(1)}]"
        return self.no_passage_reply

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0) -> str:
        return self._answer(messages, max_tokens=max_tokens, temperature=temperature, stream=False)

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        # like a real stream, the call is recorded (and any error raised) when iteration starts
        text = self._answer(messages, max_tokens=max_tokens, temperature=temperature, stream=True)
        size = max(1, self.chunk_size)
        for start in range(0, len(text), size):
            yield text[start : start + size]
