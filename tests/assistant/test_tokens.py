"""Offline token counting and passage fitting."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.tokens import (
    ELLIPSIS,
    PASSAGE_OVERHEAD_TOKENS,
    bundled_tiktoken_cache,
    count_tokens,
    fit_passages,
    passage_cost,
    truncate_tokens,
)
from retrieval._types import Passage

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


def _passage(n: int, text: str, title: str = "") -> Passage:
    return Passage(
        id=f"doc-{n}", tenant="t", kind="procedure", source="s", title=title or f"手続{n}", text=text, score=1.0 / n
    )


def test_bundled_cache_has_cl100k() -> None:
    folder = bundled_tiktoken_cache()
    assert folder is not None and folder.is_dir()
    # tiktoken names cache files by the sha1 of the download URL
    assert (folder / hashlib.sha1(CL100K_URL.encode()).hexdigest()).is_file()


def _run_offline(code: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TIKTOKEN_CACHE_DIR", "NO_PROXY", "no_proxy"}}
    # every HTTP(S) request goes to a closed port: any download attempt fails
    dead = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead, PYTHONPATH=str(PROJECT_ROOT))
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )


def test_counts_tokens_with_no_network() -> None:
    code = (
        "import os\n"
        "from assistant.tokens import count_tokens, bundled_tiktoken_cache\n"
        "assert os.environ['TIKTOKEN_CACHE_DIR'] == str(bundled_tiktoken_cache())\n"
        "print(count_tokens('転入届はどこに出しますか？ Where do I file it?'))\n"
    )
    result = _run_offline(code)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) > 5


def test_an_operators_cache_dir_is_kept(tmp_path: Path) -> None:
    code = (
        "import os, assistant.tokens\n"
        "print(os.environ['TIKTOKEN_CACHE_DIR'])\n"
        "try:\n"
        "    assistant.tokens.count_tokens('x')\n"
        "except RuntimeError as e:\n"
        "    print(e)\n"
    )
    result = _run_offline(code, TIKTOKEN_CACHE_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    kept, error = result.stdout.strip().splitlines()
    assert kept == str(tmp_path)
    # an empty cache and no network: a clear error, not a hang or a traceback from requests
    assert "cannot be downloaded" in error


def test_count_tokens() -> None:
    assert count_tokens("") == 0
    assert count_tokens("hello world") == 2
    assert count_tokens("住民票の写しの交付請求") > 3
    # special-token text from a citizen is ordinary text, not an error
    assert count_tokens("<|endoftext|>") > 1


def test_truncate_tokens_never_splits_a_character() -> None:
    text = "マイナンバーカードの交付申請は市区町村の窓口で行います。" * 20
    for limit in range(2, 40):
        cut = truncate_tokens(text, limit)
        assert count_tokens(cut) <= limit
        assert "\ufffd" not in cut
        assert cut.endswith(ELLIPSIS)
        assert text.startswith(cut[: -len(ELLIPSIS)])
    assert truncate_tokens("short", 10) == "short"
    assert truncate_tokens("anything", 0) == ""


def test_fit_keeps_everything_that_fits_unchanged() -> None:
    passages = [_passage(i, f"本文{i}です。") for i in range(1, 4)]
    fitted = fit_passages(passages, budget_tokens=1000, per_passage_max=100)
    assert fitted == passages


def test_fit_truncates_long_passages_and_keeps_order() -> None:
    long_text = "転入届は引っ越しをした日から14日以内に届け出てください。" * 50
    passages = [_passage(1, "短い本文。"), _passage(2, long_text), _passage(3, "三つ目。")]
    fitted = fit_passages(passages, budget_tokens=1000, per_passage_max=60)
    assert [p.id for p in fitted] == ["doc-1", "doc-2", "doc-3"]
    assert fitted[0] is passages[0]
    assert count_tokens(fitted[1].text) <= 60
    assert fitted[1].text.endswith(ELLIPSIS)
    assert passages[1].text == long_text  # the original is not modified


def test_fit_stops_when_the_budget_is_used() -> None:
    text = "ごみの分別について説明します。" * 30
    passages = [_passage(i, text) for i in range(1, 11)]
    budget = 400
    fitted = fit_passages(passages, budget_tokens=budget, per_passage_max=150)
    assert 1 < len(fitted) < len(passages)
    assert [p.id for p in fitted] == [f"doc-{i}" for i in range(1, len(fitted) + 1)]
    assert sum(passage_cost(p) for p in fitted) <= budget


@pytest.mark.parametrize("budget", [0, 5, PASSAGE_OVERHEAD_TOKENS + 3])
def test_fit_with_no_room_returns_nothing(budget: int) -> None:
    assert fit_passages([_passage(1, "本文" * 100)], budget_tokens=budget, per_passage_max=100) == []


def test_fit_of_nothing_is_nothing() -> None:
    assert fit_passages([], budget_tokens=100, per_passage_max=10) == []
