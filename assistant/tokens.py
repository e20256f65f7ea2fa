"""Token counting (tiktoken cl100k_base) that works with no network, and fitting passages to a budget.

tiktoken downloads its BPE files on first use unless ``TIKTOKEN_CACHE_DIR`` points at a folder
that has them. llama-index-core ships cl100k_base in its package data, so we point tiktoken
there before importing it. cl100k_base is not the tokenizer of every served model, but it is a
stable, conservative estimate for Japanese and English; budgets keep a margin for the difference.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from retrieval._types import Passage

if TYPE_CHECKING:
    import tiktoken

ENCODING_NAME = "cl100k_base"

#: tokens of the "[n] title" header and separators a passage costs in a prompt, besides its title and text
PASSAGE_OVERHEAD_TOKENS = 6

#: a passage cut shorter than this (in text tokens) carries too little to be worth citing
MIN_TRUNCATED_TOKENS = 16

ELLIPSIS = "…"


def bundled_tiktoken_cache() -> Path | None:
    """llama-index-core's bundled tiktoken cache folder, found without importing llama_index.core."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        folder = Path(location) / "_static" / "tiktoken_cache"
        if folder.is_dir():
            return folder
    return None


def _point_tiktoken_at_bundled_cache() -> None:
    # an operator's own TIKTOKEN_CACHE_DIR wins (e.g. a shared cache with more encodings)
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        return
    folder = bundled_tiktoken_cache()
    if folder is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(folder)


_point_tiktoken_at_bundled_cache()


@lru_cache(maxsize=1)
def encoding() -> tiktoken.Encoding:
    # imported here, not at the top: tiktoken reads TIKTOKEN_CACHE_DIR, which is set above
    import tiktoken

    try:
        return tiktoken.get_encoding(ENCODING_NAME)
    except Exception as exc:  # tiktoken tried to download: the cache lacks the file
        raise RuntimeError(
            f"tiktoken {ENCODING_NAME} is not in TIKTOKEN_CACHE_DIR={os.environ.get('TIKTOKEN_CACHE_DIR')!r} "
            "and cannot be downloaded; install llama-index-core (it bundles the file)"
        ) from exc


def _encode(text: str) -> list[int]:
    # disallowed_special=() : text from citizens or documents may contain "<|endoftext|>";
    # it must be counted as ordinary text, not rejected
    return encoding().encode(text, disallowed_special=())


def count_tokens(text: str) -> int:
    return len(_encode(text)) if text else 0


def truncate_tokens(text: str, max_tokens: int) -> str:
    """``text`` cut to at most ``max_tokens`` tokens (ending in "…" when cut), never mid-character."""
    if max_tokens <= 0:
        return ""
    tokens = _encode(text)
    if len(tokens) <= max_tokens:
        return text
    enc = encoding()
    keep = max_tokens - count_tokens(ELLIPSIS)
    while keep > 0:
        # a token boundary can fall inside a multi-byte character (Japanese): drop the partial bytes
        head = enc.decode_bytes(tokens[:keep]).decode("utf-8", errors="ignore").rstrip()
        cut = head + ELLIPSIS
        # re-encoding can merge differently at the seam; shrink until it really fits
        if count_tokens(cut) <= max_tokens:
            return cut
        keep -= 1
    return ""


def passage_cost(passage: Passage) -> int:
    """Tokens a passage takes in a prompt: its title, its text and the numbering around them."""
    return count_tokens(passage.title) + count_tokens(passage.text) + PASSAGE_OVERHEAD_TOKENS


def fit_passages(passages: Iterable[Passage], budget_tokens: int, per_passage_max: int) -> list[Passage]:
    """The passages, in order, that fit ``budget_tokens``; each text cut to ``per_passage_max`` tokens.

    The last passage that does not fit whole is cut to what remains of the budget, unless that
    would leave fewer than ``MIN_TRUNCATED_TOKENS`` of text; then fitting stops (later, smaller
    passages are not pulled forward: rank order is what the citations and the audit record).
    Passages are copied, never modified.
    """
    fitted: list[Passage] = []
    remaining = budget_tokens
    for passage in passages:
        header = count_tokens(passage.title) + PASSAGE_OVERHEAD_TOKENS
        room = min(per_passage_max, remaining - header)
        text_tokens = count_tokens(passage.text)
        if text_tokens <= room:
            fitted.append(passage)
            remaining -= header + text_tokens
            continue
        if room < min(MIN_TRUNCATED_TOKENS, per_passage_max) or room <= 0:
            break
        text = truncate_tokens(passage.text, room)
        fitted.append(passage.model_copy(update={"text": text}))
        remaining -= header + count_tokens(text)
        if remaining - PASSAGE_OVERHEAD_TOKENS <= 0:
            break
    return fitted


def total_cost(passages: Sequence[Passage]) -> int:
    return sum(passage_cost(p) for p in passages)
