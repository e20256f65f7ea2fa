"""ChatMessage / LLMError / TestModel, and OpenAICompatibleLLM against a real local HTTP server.

The server below speaks the OpenAI chat-completions wire format (JSON and SSE streaming) on
127.0.0.1, so the real ``openai`` client and its httpx transport are exercised end to end.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import ValidationError

from assistant.llm import (
    LLM,
    ChatMessage,
    LLMError,
    OpenAICompatibleLLM,
    TestModel,
)

# --------------------------------------------------------------------------------------------
# a tiny OpenAI-compatible server
# --------------------------------------------------------------------------------------------


@dataclass
class Behaviour:
    """What the fake server does with the next requests (tests set it per case)."""

    mode: str = "ok"  # ok | slow | status | empty_choices | empty_content | html | stall_stream | bad_sse
    reply: str = "転入届は市区町村に提出します。[1]"
    status: int = 500
    delay: float = 0.0
    #: answer the first N requests with ``status`` before behaving normally (retry tests)
    fail_first: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


def _completion(model: str, content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send_json(self, status: int, payload: Any, *, extra: dict[str, str] | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send_json(200, {"object": "list", "data": [{"id": "fake", "object": "model"}]})
        else:
            self._send_json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:
        b = self.server.behaviour
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        b.requests.append(body)
        b.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        if b.fail_first > 0:
            b.fail_first -= 1
            # retry-after-ms keeps the client's backoff short in tests
            self._send_json(b.status, {"error": {"message": "overloaded"}}, extra={"retry-after-ms": "10"})
            return
        model = body.get("model", "fake")
        if b.mode == "slow":
            time.sleep(b.delay)
        if b.mode == "status":
            self._send_json(b.status, {"error": {"message": "model is exploding", "type": "server_error"}})
            return
        if b.mode == "empty_choices":
            self._send_json(200, {**_completion(model, None), "choices": []})
            return
        if b.mode == "empty_content":
            self._send_json(200, _completion(model, ""))
            return
        if b.mode == "html":
            data = b"<html><body>proxy error</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if not body.get("stream"):
            self._send_json(200, _completion(model, b.reply))
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(_chunk(model, {"role": "assistant", "content": ""}))
        if b.mode == "bad_sse":
            self.wfile.write(b"data: {this is not json\n\n")
            self.wfile.flush()
            return
        pieces = [b.reply[i : i + 3] for i in range(0, len(b.reply), 3)]
        for n, piece in enumerate(pieces):
            self.wfile.write(_chunk(model, {"content": piece}))
            self.wfile.flush()
            if b.mode == "stall_stream" and n == 0:
                time.sleep(b.delay)  # the client's read timeout fires here
                return
        self.wfile.write(_chunk(model, {}, finish="stop"))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    behaviour: Behaviour

    def handle_error(self, request: Any, client_address: Any) -> None:
        # a client that gave up (timeout tests) makes the handler write to a closed socket
        pass


@dataclass
class FakeServer:
    base_url: str
    behaviour: Behaviour


@pytest.fixture
def server() -> Iterator[FakeServer]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.behaviour = Behaviour()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield FakeServer(f"http://127.0.0.1:{httpd.server_address[1]}/v1", httpd.behaviour)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MESSAGES = [
    ChatMessage(role="system", content="Answer only from the passages."),
    ChatMessage(role="user", content="資料:\n[1] 転入届\n手続名: 転入届\n\n質問: 転入届はどこに出す？"),
]


# --------------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------------


def test_chat_message_rejects_unknown_role() -> None:
    with pytest.raises(ValidationError):
        ChatMessage(role="tool", content="x")  # type: ignore[arg-type]


def test_llm_error_is_runtime_error_with_optional_notice() -> None:
    error = LLMError("boom")
    assert isinstance(error, RuntimeError)
    assert error.notice is None
    assert LLMError("boom", notice="n").notice == "n"


def test_implementations_satisfy_the_protocol() -> None:
    assert isinstance(TestModel(), LLM)
    assert isinstance(OpenAICompatibleLLM(base_url="http://127.0.0.1:9/v1", model="m"), LLM)


# --------------------------------------------------------------------------------------------
# TestModel
# --------------------------------------------------------------------------------------------


def test_test_model_default_reply_quotes_and_cites_first_passage() -> None:
    model = TestModel()
    reply = model.complete(MESSAGES)
    assert reply == "手続名: 転入届 [1]"


def test_test_model_single_line_passage_and_no_passage() -> None:
    model = TestModel()
    assert (
        model.complete([ChatMessage(role="user", content="[1] 燃やせるごみです\n\n質問: x")]) == "燃やせるごみです [1]"
    )
    assert model.complete([ChatMessage(role="user", content="no passages here")]) == "わかりません。"
    assert TestModel(no_passage_reply="I don't know.").complete([ChatMessage(role="user", content="?")]) == (
        "I don't know."
    )


def test_test_model_canned_and_callable_reply_and_records_calls() -> None:
    model = TestModel(reply="固定の回答です。[1]")
    assert model.complete(MESSAGES, max_tokens=64, temperature=0.3) == "固定の回答です。[1]"
    assert "".join(model.stream(MESSAGES)) == "固定の回答です。[1]"
    assert [(c.max_tokens, c.temperature, c.stream) for c in model.calls] == [(64, 0.3, False), (512, 0.0, True)]
    assert model.calls[0].messages == MESSAGES

    echo = TestModel(reply=lambda messages: messages[-1].content.upper())
    assert echo.complete([ChatMessage(role="user", content="abc")]) == "ABC"


def test_test_model_streams_several_deltas() -> None:
    deltas = list(TestModel(reply="0123456789", chunk_size=3).stream(MESSAGES))
    assert deltas == ["012", "345", "678", "9"]


def test_test_model_raises_configured_error() -> None:
    model = TestModel(error="model down")
    with pytest.raises(LLMError, match="model down"):
        model.complete(MESSAGES)
    with pytest.raises(LLMError, match="model down"):
        next(iter(model.stream(MESSAGES)))
    assert len(model.calls) == 2
    custom = LLMError("custom")
    with pytest.raises(LLMError) as info:
        TestModel(error=custom).complete(MESSAGES)
    assert info.value is custom


# --------------------------------------------------------------------------------------------
# OpenAICompatibleLLM over real HTTP
# --------------------------------------------------------------------------------------------


def _llm(server: FakeServer, **kwargs: Any) -> OpenAICompatibleLLM:
    options: dict[str, Any] = {"timeout": 5.0, "max_retries": 0, **kwargs}
    return OpenAICompatibleLLM(base_url=server.base_url, model="gemma3", **options)


def test_complete_sends_openai_request_and_returns_text(server: FakeServer) -> None:
    llm = _llm(server, api_key="secret-key")
    assert llm.complete(MESSAGES, max_tokens=77, temperature=0.2) == "転入届は市区町村に提出します。[1]"
    request = server.behaviour.requests[-1]
    assert request["model"] == "gemma3"
    assert request["max_tokens"] == 77
    assert request["temperature"] == 0.2
    assert not request.get("stream")
    assert request["messages"] == [m.model_dump() for m in MESSAGES]
    assert server.behaviour.headers[-1]["authorization"] == "Bearer secret-key"
    assert "secret-key" not in repr(llm)


def test_stream_yields_deltas_over_sse(server: FakeServer) -> None:
    server.behaviour.reply = "Please file it at the city office. [1]"
    deltas = list(_llm(server).stream(MESSAGES))
    assert len(deltas) > 1
    assert all(deltas)  # empty role-only deltas are not passed on
    assert "".join(deltas) == "Please file it at the city office. [1]"
    assert server.behaviour.requests[-1]["stream"] is True


def test_consumer_may_stop_a_stream_early(server: FakeServer) -> None:
    stream = _llm(server).stream(MESSAGES)
    assert isinstance(stream, Generator)
    first = next(stream)
    assert first
    stream.close()  # must close the HTTP response without raising


def test_timeout_raises_llm_error(server: FakeServer) -> None:
    server.behaviour.mode, server.behaviour.delay = "slow", 3.0
    llm = _llm(server, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(LLMError, match="timed out"):
        llm.complete(MESSAGES)
    assert time.monotonic() - started < 2.5


def test_stalled_stream_raises_llm_error(server: FakeServer) -> None:
    server.behaviour.mode, server.behaviour.delay = "stall_stream", 3.0
    received: list[str] = []
    with pytest.raises(LLMError, match="timed out"):
        for delta in _llm(server, timeout=0.4).stream(MESSAGES):
            received.append(delta)
    assert received  # the first delta arrived before the stall


def test_connection_refused_raises_llm_error() -> None:
    llm = OpenAICompatibleLLM(base_url=f"http://127.0.0.1:{_free_port()}/v1", model="m", timeout=2.0, max_retries=0)
    started = time.monotonic()
    with pytest.raises(LLMError, match="unreachable"):
        llm.complete(MESSAGES)
    with pytest.raises(LLMError, match="unreachable"):
        list(llm.stream(MESSAGES))
    assert time.monotonic() - started < 5


def test_http_error_status_raises_llm_error(server: FakeServer) -> None:
    server.behaviour.mode, server.behaviour.status = "status", 500
    with pytest.raises(LLMError, match=r"HTTP 500.*model is exploding"):
        _llm(server).complete(MESSAGES)
    server.behaviour.status = 404
    with pytest.raises(LLMError, match="HTTP 404"):
        list(_llm(server).stream(MESSAGES))


def test_client_retries_transient_errors(server: FakeServer) -> None:
    server.behaviour.fail_first, server.behaviour.status = 1, 503
    assert _llm(server, max_retries=1).complete(MESSAGES).startswith("転入届")
    assert len(server.behaviour.requests) == 2


@pytest.mark.parametrize(
    ("mode", "message"),
    [("empty_choices", "no choices"), ("empty_content", "empty reply"), ("html", "non-JSON body")],
)
def test_bad_responses_raise_llm_error(server: FakeServer, mode: str, message: str) -> None:
    server.behaviour.mode = mode
    with pytest.raises(LLMError, match=message):
        _llm(server).complete(MESSAGES)
    with pytest.raises(LLMError, match="empty"):
        list(_llm(server).stream(MESSAGES))


def test_malformed_sse_raises_llm_error(server: FakeServer) -> None:
    server.behaviour.mode = "bad_sse"
    with pytest.raises(LLMError, match="bad response"):
        list(_llm(server).stream(MESSAGES))


def test_empty_stream_raises_llm_error(server: FakeServer) -> None:
    server.behaviour.reply = ""
    with pytest.raises(LLMError, match="empty"):
        list(_llm(server).stream(MESSAGES))
