"""Compose an answer with an LLM from retrieved passages: numbered context in, cited sentences out.

The composer never hides an LLM failure: it raises :class:`LLMError` and the pipeline falls back
to the extractive composer (with the ``llm_fallback_notice`` this composer attaches to the error).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

import prompts
from assistant._types import Citation, Draft, Sentence
from assistant.llm import LLM, ChatMessage, LLMError
from assistant.tokens import fit_passages
from retrieval._types import Passage

WORDING_PROMPT = "answer_wording"

#: a citation marker as models write it: [1], [1, 2], [1][2], full-width ［１］ or 【1】
_MARKER = re.compile(r"[\[［【]\s*([0-9０-９]+(?:\s*[,，、]\s*[0-9０-９]+)*)\s*[\]］】]")
#: one sentence: text up to a terminator (Japanese 。！？, or . ! ? before a space / marker / end),
#: then the markers that follow it, which models put after the full stop as often as before it
_SENTENCE = re.compile(
    r"""
    \s*
    (?P<body>.+?
      (?:[。！？]+(?![」』）)])         # a full stop inside 「…」 does not end the sentence
        |(?<!e\.g)(?<!i\.e)[.!?]+[)"”']*(?=\s|$|[\[［【])
        |$)
    )
    (?P<trail>(?:\s*[\[［【]\s*[0-9０-９]+(?:\s*[,，、]\s*[0-9０-９]+)*\s*[\]］】])*)
    """,
    re.VERBOSE,
)
#: list bullets and numbering at the start of a line ("- ", "・", "1. ", "1) ")
_BULLET = re.compile(r"^\s*(?:[-*•・]|\d{1,2}[.)、])\s+")

#: replies that mean "the passages do not answer this" (prompt rule 4)
_DONT_KNOW = ("わかりません", "分かりません", "i don't know", "i do not know", "i don’t know")


def _marker_ids(text: str) -> list[int]:
    ids: list[int] = []
    for match in _MARKER.finditer(text):
        for number in re.split(r"[,，、]", match.group(1)):
            value = int(unicodedata.normalize("NFKC", number.strip()))
            if value not in ids:
                ids.append(value)
    return ids


def _clean_text(text: str) -> str:
    text = _MARKER.sub("", text)
    # "(see [1])" leaves an empty pair of brackets
    text = re.sub(r"\(\s*\)|（\s*）", "", text)
    # removing a marker can leave "転入届 。" or "fee ." behind
    text = re.sub(r"\s+([。、，．,.!?！？])", r"\1", text)
    return re.sub(r"[ \t　]{2,}", " ", text).strip()


def split_sentences(reply: str, n_passages: int) -> list[Sentence]:
    """The reply as sentences, each with the ids of the passages its ``[n]`` markers cite.

    Markers are removed from the text (the renderer writes them from ``citations``); markers that
    point to no passage (0, or above ``n_passages``) are dropped. Sentences that are only
    markers or punctuation are dropped too.
    """
    sentences: list[Sentence] = []
    for raw_line in reply.splitlines():
        line = _BULLET.sub("", raw_line).strip()
        # markdown emphasis carries no meaning in a plain-text answer
        line = line.replace("**", "").strip()
        if not line:
            continue
        for match in _SENTENCE.finditer(line):
            chunk = match.group(0)
            ids = [i for i in _marker_ids(chunk) if 1 <= i <= n_passages]
            text = _clean_text(chunk)
            if not re.search(r"\w", text):
                # markers alone on a line (e.g. "[1][2]" after a paragraph) cite the previous sentence
                if sentences and ids:
                    previous = sentences[-1]
                    merged = previous.citations + [i for i in ids if i not in previous.citations]
                    sentences[-1] = previous.model_copy(update={"citations": merged})
                continue
            sentences.append(Sentence(text=text, citations=ids))
    return sentences


def is_dont_know(reply: str) -> bool:
    head = _clean_text(reply).strip().lower().lstrip("「\"'")
    return head.startswith(_DONT_KNOW)


def citations_for(passages: Sequence[Passage]) -> list[Citation]:
    """Citations 1..n, in the order the passages were numbered in the prompt.

    Same shape as the extractive composer's: the readable source title when the connector
    recorded one, and the score rounded for display and audit.
    """
    return [
        Citation(
            id=n,
            doc_id=p.id,
            title=p.title,
            source=str(p.payload.get("source_title") or p.source),
            url=p.url,
            score=round(p.score, 4),
        )
        for n, p in enumerate(passages, start=1)
    ]


class LLMComposer:
    """Grounded answers from an LLM.

    * ``context_tokens``: budget for the passages in the prompt (cl100k tokens); passages are
      kept in rank order and cut to fit, and only those shown to the model become citations.
    * ``per_passage_tokens``: the most one passage may take, so one long document cannot crowd
      out the others.
    * ``timeout_notice``: attach the ``llm_fallback_notice`` wording (in the request language)
      to the raised :class:`LLMError`, so the pipeline's fallback answer tells the citizen why it
      reads differently.
    """

    def __init__(
        self,
        llm: LLM,
        prompt_name: str = "grounded_answer",
        context_tokens: int = 3000,
        max_tokens: int = 512,
        timeout_notice: bool = True,
        *,
        per_passage_tokens: int = 800,
        temperature: float = 0.0,
    ) -> None:
        self.llm = llm
        self.prompt = prompts.load(prompt_name)
        self.wording = prompts.load(WORDING_PROMPT)
        self.context_tokens = context_tokens
        self.max_tokens = max_tokens
        self.timeout_notice = timeout_notice
        self.per_passage_tokens = per_passage_tokens
        self.temperature = temperature

    @property
    def prompt_ref(self) -> str:
        """What the audit log records: ``grounded_answer@v1``."""
        return self.prompt.ref

    def fit(self, passages: Sequence[Passage]) -> list[Passage]:
        return fit_passages(passages, self.context_tokens, self.per_passage_tokens)

    def messages(self, question: str, language: str, passages: Sequence[Passage]) -> list[ChatMessage]:
        """The prompt for already-fitted ``passages`` (numbered 1..n in the given order)."""
        numbered: list[dict[str, Any]] = [
            {
                "n": n,
                "title": p.title,
                # a readable source name when the connector recorded one, else the source id
                "source": p.payload.get("source_title") or p.source,
                "text": p.text,
            }
            for n, p in enumerate(passages, start=1)
        ]
        return self.prompt.messages(language, question=question, passages=numbered)

    def _refusal(self, language: str) -> Draft:
        return Draft(
            sentences=[Sentence(text=self.wording.text(language, "refusal"))],
            citations=[],
            mode="refusal",
            refused=True,
        )

    def _with_notice(self, error: LLMError, language: str) -> LLMError:
        if self.timeout_notice and error.notice is None:
            error.notice = self.wording.text(language, "llm_fallback_notice")
        return error

    def parse(self, reply: str, passages: Sequence[Passage], language: str | None = None) -> Draft:
        """The Draft for a model ``reply`` to the prompt built from ``passages`` (e.g. a finished stream).

        ``passages`` are the ones given to :meth:`compose` / :meth:`stream`; they are fitted
        again (deterministically) so the ``[n]`` numbers mean what they meant in the prompt.
        Raises LLMError when the reply holds no sentence (the pipeline falls back).
        """
        return self._draft(reply, self.fit(passages), language)

    def _draft(self, reply: str, shown: Sequence[Passage], language: str | None) -> Draft:
        sentences = split_sentences(reply, len(shown))
        if not sentences:
            error = LLMError(f"LLM {self.llm.model_id!r} reply has no sentence: {reply[:200]!r}")
            raise self._with_notice(error, language) if language else error
        # no notices here: the pipeline adds the AI disclosure and the contact to every answer
        return Draft(sentences=sentences, citations=citations_for(shown), mode="llm", refused=is_dont_know(reply))

    def compose(self, question: str, language: str, passages: list[Passage]) -> Draft:
        # validate the language before spending a model call on it
        self.prompt.template(language, "system")
        shown = self.fit(passages)
        if not shown:
            # nothing to ground an answer in: asking the model could only produce a guess
            return self._refusal(language)
        messages = self.messages(question, language, shown)
        try:
            reply = self.llm.complete(messages, max_tokens=self.max_tokens, temperature=self.temperature)
        except LLMError as exc:
            self._with_notice(exc, language)
            raise
        except Exception as exc:
            # any failure, even a bug in an LLM adapter, must reach the pipeline as LLMError
            raise self._with_notice(LLMError(f"LLM {self.llm.model_id!r} failed: {exc!r}"), language) from exc
        return self._draft(reply, shown, language)

    def stream(self, question: str, language: str, passages: list[Passage]) -> Iterator[str]:
        """The reply as it is generated (raw text, ``[n]`` markers included)."""
        self.prompt.template(language, "system")
        shown = self.fit(passages)
        if not shown:
            yield self.wording.text(language, "refusal")
            return
        messages = self.messages(question, language, shown)
        try:
            yield from self.llm.stream(messages, max_tokens=self.max_tokens, temperature=self.temperature)
        except LLMError as exc:
            self._with_notice(exc, language)
            raise
        except Exception as exc:
            raise self._with_notice(LLMError(f"LLM {self.llm.model_id!r} failed: {exc!r}"), language) from exc
