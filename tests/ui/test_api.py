"""The hosted API over a real pipeline (small index, hash embedder): answers, streams, and bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from assistant.pipeline import Pipeline
from assistant.services import Services
from ui.api import create_app


@pytest.fixture
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipeline.services.settings, pipeline=pipeline)) as c:
        yield c


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["points"] > 0


def test_ask_returns_a_cited_answer(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "戸籍の届出（出生）はどこに出しますか", "tenant": "hakodate"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) >= {"answer", "citations", "refused", "language", "mode", "notices"}
    assert body["citations"][0]["doc_id"] == "proc-13165"
    assert {"id", "title", "source", "url", "score"} <= set(body["citations"][0])
    assert "decisions" not in body  # rule decisions go to the audit log, not to citizens


def test_ask_streams_server_sent_events(client: TestClient) -> None:
    with client.stream(
        "POST", "/v1/ask", json={"question": "フライパンは何ごみ", "tenant": "hakodate", "stream": True}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = "".join(r.iter_text())
    events = [json.loads(block.split("data: ", 1)[1]) for block in raw.strip().split("\n\n")]
    assert events[0]["type"] == "meta" and events[-1]["type"] == "done"
    assert events[-1]["answer"]["citations"]


def test_search(client: TestClient) -> None:
    r = client.get("/v1/search", params={"q": "婚姻の届出", "tenant": "hakodate", "k": 3})
    assert r.status_code == 200
    results = r.json()["results"]
    assert results[0]["id"] == "proc-13183"
    only_garbage = client.get("/v1/search", params={"q": "フライパン", "tenant": "hakodate", "kind": "garbage"})
    assert all(x["kind"] == "garbage" for x in only_garbage.json()["results"])


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"question": "", "tenant": "hakodate"}, 422),
        ({"question": "   ", "tenant": "hakodate"}, 422),
        ({"question": "あ" * 100_000, "tenant": "hakodate"}, 413),
        ({"question": "出生届", "tenant": "atlantis"}, 404),
        ({"question": "出生届"}, 422),
        ({"question": 42, "tenant": "hakodate"}, 422),
        ({"question": "出生届", "tenant": "hakodate", "k": 0}, 422),
    ],
)
def test_bad_questions_get_a_clear_4xx(client: TestClient, body: dict[str, object], status: int) -> None:
    r = client.post("/v1/ask", json=body)
    assert r.status_code == status
    assert r.json()["error"]


def test_invalid_json_and_non_utf8_bytes(client: TestClient) -> None:
    r = client.post("/v1/ask", content=b'{"question": "x", ', headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    raw = '{"question": "出生届", "tenant": "hakodate"}'.encode("shift_jis")
    r = client.post("/v1/ask", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/v1/ask", content=b"\xff\xfe\x00garbage", headers={"content-type": "application/json"})
    assert r.status_code == 400


def test_a_huge_body_is_refused_before_parsing(client: TestClient) -> None:
    r = client.post("/v1/ask", content=b"{" + b" " * 400_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_streaming_bad_input_is_a_4xx_not_a_broken_stream(client: TestClient) -> None:
    r = client.post("/v1/ask", json={"question": "", "tenant": "hakodate", "stream": True})
    assert r.status_code == 422


def test_search_bad_input(client: TestClient) -> None:
    assert client.get("/v1/search", params={"q": "", "tenant": "hakodate"}).status_code == 422
    assert client.get("/v1/search", params={"q": "x", "tenant": "atlantis"}).status_code == 404
    assert client.get("/v1/search", params={"q": "x", "tenant": "hakodate", "mode": "magic"}).status_code == 422


def test_the_service_keeps_working_after_bad_requests(client: TestClient) -> None:
    client.post("/v1/ask", content=b"\xff", headers={"content-type": "application/json"})
    client.post("/v1/ask", json={"question": "あ" * 100_000, "tenant": "hakodate"})
    r = client.post("/v1/ask", json={"question": "戸籍の届出（婚姻）はどこに出す", "tenant": "hakodate"})
    assert r.status_code == 200 and not r.json()["refused"]


def test_docs_and_widget_are_served_locally(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/swagger/swagger-ui-bundle.js" in docs.text
    assert "cdn" not in docs.text.lower()
    assert client.get("/swagger/swagger-ui-bundle.js").status_code == 200
    assert client.get("/openapi.json").json()["paths"]["/v1/ask"]
    page = client.get("/")
    assert page.status_code == 200 and "widget.js" in page.text
    assert client.get("/static/widget.js").status_code == 200


def test_a_stopped_llm_server_gives_an_extractive_answer_not_a_500(services: Services) -> None:
    import socket

    from assistant.confidence import Calibration
    from assistant.llm import OpenAICompatibleLLM

    with socket.socket() as s:  # a port nobody listens on: what a stopped LLM server looks like
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    services._overrides["llm"] = OpenAICompatibleLLM(
        base_url=f"http://127.0.0.1:{dead}/v1", model="m", timeout=1.0, max_retries=0
    )
    calibration = Calibration(weights={"dense_top": 12.0, "coverage": 6.0}, bias=-7.0, threshold=0.5)
    app = create_app(services.settings, pipeline=Pipeline(services, calibration=calibration))
    with TestClient(app) as client:
        for stream in (False, True):
            r = client.post(
                "/v1/ask",
                json={"question": "戸籍の届出（出生）はどこに出しますか", "tenant": "hakodate", "stream": stream},
            )
            assert r.status_code == 200
            body = (
                r.json() if not stream else json.loads(r.text.strip().split("\n\n")[-1].split("data: ", 1)[1])["answer"]
            )
            assert body["mode"] == "llm-fallback" and body["citations"]
            assert any("利用できない" in n for n in body["notices"])
