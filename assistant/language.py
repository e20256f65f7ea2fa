"""Which language a question is in: the answer is written in the same one."""

from __future__ import annotations

import re

from retrieval._types import Language

_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_language(text: str) -> Language:
    """Japanese if kana/kanji carry a real share of the letters, else English.

    A Japanese question may contain Latin words (マイナンバーカード, e-Gov); an English one may
    quote a Japanese name (how do I file 出生届?), so compare the two scripts' shares.
    """
    japanese = len(_JAPANESE.findall(text))
    latin = len(_LATIN.findall(text))
    if japanese == 0:
        return "en"
    # English words are ~5 letters, a Japanese word ~2 characters: weigh accordingly
    return "ja" if japanese * 2.5 >= latin else "en"
