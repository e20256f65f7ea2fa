"""LLMComposer with the offline TestModel: prompt, citations, sentence parsing, failures."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

import prompts
from assistant.compose_llm import LLMComposer, is_dont_know, split_sentences
from assistant.llm import ChatMessage, LLMError, TestModel
from retrieval._types import Passage


def _procedure(n: int, title: str, text: str) -> Passage:
    return Passage(
        id=f"proc-{n}",
        tenant="_shared",
        kind="procedure",
        source="digital-agency-procedures",
        title=title,
        text=text,
        url="https://www.digital.go.jp/resources/procedures-survey",
        score=1.0 - n / 10,
        payload={"source_title": "デジタル庁 行政手続等の棚卸調査結果"},
    )


PASSAGES = [
    _procedure(1, "転入届", "手続名: 転入届\n根拠法令: 住民基本台帳法 第22条\n提出先: 市区町村"),
    _procedure(2, "転出届", "手続名: 転出届\n根拠法令: 住民基本台帳法 第24条\n提出先: 市区町村"),
    _procedure(3, "印鑑登録", "手続名: 印鑑登録\n提出先: 市区町村"),
]


def test_compose_with_default_test_model_reply() -> None:
    model = TestModel()
    draft = LLMComposer(model).compose("転入届はどこに出しますか？", "ja", PASSAGES)
    assert draft.mode == "llm"
    assert not draft.refused
    assert [(s.text, s.citations) for s in draft.sentences] == [("手続名: 転入届", [1])]
    assert [(c.id, c.doc_id, c.title) for c in draft.citations] == [
        (1, "proc-1", "転入届"),
        (2, "proc-2", "転出届"),
        (3, "proc-3", "印鑑登録"),
    ]
    assert draft.citations[0].url == PASSAGES[0].url
    assert draft.citations[0].score == PASSAGES[0].score
    assert draft.citations[0].source == "デジタル庁 行政手続等の棚卸調査結果"
    # the pipeline adds the AI disclosure and the contact to every answer, whatever composed it
    assert draft.notices == []


def test_prompt_numbers_passages_and_carries_question() -> None:
    model = TestModel()
    composer = LLMComposer(model, max_tokens=200)
    composer.compose("転入届はどこに出しますか？", "ja", PASSAGES)
    call = model.calls[0]
    assert call.max_tokens == 200
    assert call.temperature == 0.0
    system, user = call.messages
    assert system.role == "system" and "わかりません" in system.content
    assert user.role == "user"
    assert "質問: 転入届はどこに出しますか？" in user.content
    assert "[1] 転入届（出典: デジタル庁 行政手続等の棚卸調査結果）" in user.content
    assert user.content.index("[1] 転入届") < user.content.index("[2] 転出届") < user.content.index("[3] 印鑑登録")
    assert composer.prompt_ref == "grounded_answer@v1"


def test_english_prompt() -> None:
    model = TestModel(reply="You file it at the municipal office [1]. You may be eligible for online filing [2].")
    draft = LLMComposer(model).compose("Where do I file a moving-in notice?", "en", PASSAGES)
    assert "Question: Where do I file a moving-in notice?" in model.calls[0].messages[1].content
    assert [(s.text, s.citations) for s in draft.sentences] == [
        ("You file it at the municipal office.", [1]),
        ("You may be eligible for online filing.", [2]),
    ]


def test_markers_to_missing_passages_are_dropped() -> None:
    reply = "転入届は市区町村に提出します。[1][7] 転出届も同じです[2, 0]。根拠はありません[9]。"
    draft = LLMComposer(TestModel(reply=reply)).compose("q", "ja", PASSAGES)
    assert [(s.text, s.citations) for s in draft.sentences] == [
        ("転入届は市区町村に提出します。", [1]),
        ("転出届も同じです。", [2]),
        ("根拠はありません。", []),
    ]


def test_citations_are_the_passages_shown_to_the_model() -> None:
    long_text = "手続名: 長い手続\n" + "説明文です。" * 400
    passages = [_procedure(1, "長い手続", long_text), *PASSAGES[1:]]
    model = TestModel(reply="説明です。[1] 二つ目です。[2] 三つ目です。[3]")
    draft = LLMComposer(model, context_tokens=120, per_passage_tokens=100).compose("q", "ja", passages)
    shown = len(draft.citations)
    assert 1 <= shown < 3
    assert all(all(1 <= c <= shown for c in s.citations) for s in draft.sentences)
    # the prompt held the cut text, not the whole document
    assert "説明文です。" * 400 not in model.calls[0].messages[1].content


def test_dont_know_reply_is_a_refused_llm_draft() -> None:
    draft = LLMComposer(TestModel(reply="わかりません。")).compose("宇宙旅行の補助金は？", "ja", PASSAGES)
    assert draft.refused
    assert draft.mode == "llm"
    assert draft.sentences[0].text == "わかりません。"
    assert is_dont_know("I don't know.")
    assert not is_dont_know("転入届は市区町村に提出します。[1]")


def test_no_passages_refuses_without_calling_the_model() -> None:
    model = TestModel()
    draft = LLMComposer(model).compose("q", "en", [])
    assert draft.refused and draft.mode == "refusal"
    assert draft.citations == []
    assert draft.sentences[0].text.startswith("I don't know.")
    assert model.calls == []
    assert list(LLMComposer(model).stream("q", "ja", [])) == [prompts.load("answer_wording").text("ja", "refusal")]


def test_llm_error_propagates_with_fallback_notice() -> None:
    composer = LLMComposer(TestModel(error="server down"))
    with pytest.raises(LLMError, match="server down") as info:
        composer.compose("q", "ja", PASSAGES)
    assert info.value.notice == prompts.load("answer_wording").text("ja", "llm_fallback_notice")

    quiet = LLMComposer(TestModel(error="server down"), timeout_notice=False)
    with pytest.raises(LLMError) as info:
        quiet.compose("q", "en", PASSAGES)
    assert info.value.notice is None


class _BrokenLLM:
    """An adapter with a bug: it raises something that is not an LLMError."""

    model_id = "broken"

    def complete(self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0) -> str:
        raise KeyError("choices")

    def stream(
        self, messages: Sequence[ChatMessage], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> Iterator[str]:
        yield "partial "
        raise ConnectionResetError("peer reset")


def test_any_adapter_failure_becomes_llm_error() -> None:
    composer = LLMComposer(_BrokenLLM())
    with pytest.raises(LLMError, match="broken") as info:
        composer.compose("q", "ja", PASSAGES)
    assert isinstance(info.value.__cause__, KeyError)
    received: list[str] = []
    with pytest.raises(LLMError, match="peer reset"):
        for delta in composer.stream("q", "en", PASSAGES):
            received.append(delta)
    assert received == ["partial "]


def test_reply_without_sentences_is_an_error() -> None:
    with pytest.raises(LLMError, match="no sentence"):
        LLMComposer(TestModel(reply="[1][2]")).compose("q", "ja", PASSAGES)


def test_stream_yields_model_deltas() -> None:
    model = TestModel(reply="転入届は市区町村に提出します。[1]", chunk_size=5)
    deltas = list(LLMComposer(model).stream("q", "ja", PASSAGES))
    assert len(deltas) > 1
    assert "".join(deltas) == "転入届は市区町村に提出します。[1]"
    assert model.calls[0].stream is True

    failing = LLMComposer(TestModel(error="down"))
    with pytest.raises(LLMError) as info:
        list(failing.stream("q", "en", PASSAGES))
    assert info.value.notice == prompts.load("answer_wording").text("en", "llm_fallback_notice")


def test_unknown_language_or_prompt_is_a_value_error() -> None:
    model = TestModel()
    with pytest.raises(ValueError, match="no language 'fr'"):
        LLMComposer(model).compose("q", "fr", PASSAGES)
    assert model.calls == []
    with pytest.raises(ValueError, match="unknown prompt"):
        LLMComposer(model, prompt_name="no_such_prompt")


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            "転入届は市区町村に提出します。[1] 手数料はかかりません[2]。\n- オンライン申請はできません [1][3]。",
            [
                ("転入届は市区町村に提出します。", [1]),
                ("手数料はかかりません。", [2]),
                ("オンライン申請はできません。", [1, 3]),
            ],
        ),
        (
            "It is filed at the city office [1]. No fee is charged. [2][9]\n\n[1][2]",
            [("It is filed at the city office.", [1]), ("No fee is charged.", [2, 1])],
        ),
        ("「わかりません。」と答えます。", [("「わかりません。」と答えます。", [])]),
        ("Version 3.5 applies [1, 2]. Done!", [("Version 3.5 applies.", [1, 2]), ("Done!", [])]),
        ("**手数料**: なし【2】", [("手数料: なし", [2])]),
        ("全角の番号です［３］。", [("全角の番号です。", [3])]),
        ("1. First [1].\n2. Second [0]", [("First.", [1]), ("Second", [])]),
        ("", []),
    ],
)
def test_split_sentences(reply: str, expected: list[tuple[str, list[int]]]) -> None:
    assert [(s.text, s.citations) for s in split_sentences(reply, 3)] == expected


def test_parse_a_streamed_reply() -> None:
    model = TestModel(reply="転入届は市区町村に提出します。[1] 転出届も同じです。[2][5]", chunk_size=3)
    composer = LLMComposer(model)
    text = "".join(composer.stream("q", "ja", PASSAGES))
    draft = composer.parse(text, PASSAGES)
    assert draft == composer.compose("q", "ja", PASSAGES)
    assert [(s.text, s.citations) for s in draft.sentences] == [
        ("転入届は市区町村に提出します。", [1]),
        ("転出届も同じです。", [2]),
    ]
    with pytest.raises(LLMError, match="no sentence") as info:
        composer.parse("[1]", PASSAGES)
    assert info.value.notice is None
    with pytest.raises(LLMError) as info:
        composer.parse("", PASSAGES, "en")
    assert info.value.notice == prompts.load("answer_wording").text("en", "llm_fallback_notice")


def test_parse_numbers_like_the_prompt_when_passages_were_cut() -> None:
    passages = [_procedure(n, f"手続{n}", "説明文です。" * 200) for n in range(1, 6)]
    composer = LLMComposer(TestModel(), context_tokens=300, per_passage_tokens=120)
    shown = composer.fit(passages)
    assert 1 < len(shown) < 5
    draft = composer.parse("説明です。[1] 最後です。[5]", passages)
    assert len(draft.citations) == len(shown)
    assert draft.sentences[1].citations == []  # [5] was never shown to the model
