"""The versioned prompt files and their loader."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from langchain_core.prompts import PromptTemplate

import prompts
from prompts import PromptFileError, PromptSpec

WORDING_KEYS = {
    "ai_disclosure",
    "human_contact",
    "refusal",
    "llm_fallback_notice",
    "sources_heading",
    "procedure_law",
    "procedure_title",
    "procedure_office",
    "procedure_online",
    "procedure_attachments",
    "procedure_fee",
    "garbage_category",
    "garbage_notice",
}

PASSAGES = [
    {"n": 1, "title": "転入届", "source": "デジタル庁", "text": "手続名: 転入届\n提出先: 市区町村"},
    {"n": 2, "title": "缶（ごみの分別）", "source": "函館市", "text": "品目: 缶\n分別区分: 缶・びん・ペットボトル"},
]


def test_available_lists_shipped_prompts() -> None:
    assert {"grounded_answer", "answer_wording"} <= set(prompts.available())


@pytest.mark.parametrize("name", prompts.available())
def test_every_prompt_file_is_consistent(name: str) -> None:
    spec = prompts.load(name)
    assert spec.id == name
    assert spec.version >= 1
    assert spec.description
    assert spec.ref == f"{name}@v{spec.version}"
    assert set(spec.languages) == {"ja", "en"}
    # every language has the same templates, so no wording exists in one language only
    assert spec.keys("ja") == spec.keys("en")
    for language in spec.languages:
        for key in spec.keys(language):
            # every template is valid jinja2 and renders with its own variables filled in
            variables = PromptTemplate.from_template(spec.template(language, key), template_format="jinja2")
            values: dict[str, Any] = {v: "x" for v in variables.input_variables}
            if "passages" in values:
                values["passages"] = PASSAGES
            assert spec.text(language, key, **values)


def test_load_is_cached() -> None:
    assert prompts.load("grounded_answer") is prompts.load("grounded_answer")


def test_grounded_answer_rules_per_language() -> None:
    spec = prompts.load("grounded_answer")
    assert spec.ref == "grounded_answer@v1"
    ja = spec.template("ja", "system")
    for phrase in ("番号付きの資料", "[1]", "わかりません", "対象となる可能性があります", "個人情報", "質問と同じ言語"):
        assert phrase in ja
    en = spec.template("en", "system")
    for phrase in ("ONLY", "[1]", "I don't know", "may be eligible", "personal data", "language of the question"):
        assert phrase in en


def test_messages_render_question_and_numbered_passages() -> None:
    messages = prompts.load("grounded_answer").messages("ja", question="転入届はどこに出す？", passages=PASSAGES)
    assert [m.role for m in messages] == ["system", "user"]
    user = messages[1].content
    assert "[1] 転入届（出典: デジタル庁）\n手続名: 転入届\n提出先: 市区町村" in user
    assert "[2] 缶（ごみの分別）（出典: 函館市）" in user
    assert user.rstrip().endswith("付けて答えてください。")
    assert "質問: 転入届はどこに出す？" in user

    en = prompts.load("grounded_answer").messages("en", question="Where?", passages=PASSAGES)[1].content
    assert "[1] 転入届 (source: デジタル庁)" in en and "Question: Where?" in en


def test_values_are_data_not_templates() -> None:
    # a question or a document containing template syntax must reach the model literally
    messages = prompts.load("grounded_answer").messages(
        "en",
        question="{{ 7 * 7 }} {% for x in y %}",
        passages=[{"n": 1, "title": "{{ secret }}", "source": "s", "text": "{# comment #}"}],
    )
    assert "{{ 7 * 7 }} {% for x in y %}" in messages[1].content
    assert "{{ secret }}" in messages[1].content and "{# comment #}" in messages[1].content
    assert "49" not in messages[1].content


def test_missing_variables_are_an_error() -> None:
    spec = prompts.load("grounded_answer")
    with pytest.raises(ValueError, match="passages"):
        spec.messages("ja", question="q")
    with pytest.raises(ValueError, match="title"):
        prompts.load("answer_wording").text("ja", "procedure_law", law="住民基本台帳法")


def test_unknown_prompt_language_or_key() -> None:
    with pytest.raises(ValueError, match="unknown prompt 'nope'"):
        prompts.load("nope")
    with pytest.raises(ValueError, match="invalid prompt name"):
        prompts.load("../assistant/settings")
    spec = prompts.load("grounded_answer")
    with pytest.raises(ValueError, match="no language 'fr'"):
        spec.messages("fr", question="q", passages=[])
    with pytest.raises(ValueError, match="no template 'nope'"):
        spec.text("ja", "nope")
    with pytest.raises(ValueError, match="not a chat prompt"):
        prompts.load("answer_wording").messages("ja")


def test_answer_wording_keys_and_texts() -> None:
    spec = prompts.load("answer_wording")
    assert spec.ref == "answer_wording@v2"
    for language in ("ja", "en"):
        # the extractive composer may add wordings; these are the ones every answer path relies on
        assert set(spec.keys(language)) >= WORDING_KEYS
    assert (
        spec.text("ja", "ai_disclosure")
        == "この回答はAIが公開資料から自動作成したものです。正確な内容は各窓口にご確認ください。"
    )
    assert spec.text("ja", "human_contact").startswith("職員への問い合わせ:")
    assert spec.text("ja", "refusal").startswith("わかりません。")
    assert spec.text("en", "refusal").startswith("I don't know.")
    assert spec.text("ja", "sources_heading") == "出典"
    assert (
        spec.text("ja", "procedure_law", title="転入届", law="住民基本台帳法")
        == "「転入届」は住民基本台帳法に基づく手続です。"
    )
    assert spec.text("ja", "procedure_office", office="市区町村") == "提出先: 市区町村"
    assert spec.text("ja", "garbage_category", item="空き缶", category="缶") == "「空き缶」は「缶」です。"
    assert spec.text("en", "procedure_law", title="転入届", law="住民基本台帳法") == (
        "「転入届」 is a procedure based on 住民基本台帳法."
    )
    assert "「空き缶」" in spec.text("en", "garbage_category", item="空き缶", category="缶")


def test_spec_is_immutable() -> None:
    spec = prompts.load("grounded_answer")
    with pytest.raises(Exception, match="frozen"):
        spec.version = 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a list", "mapping at top level"),
        ("id: other\nversion: 1\nja: {system: s}", "must equal the file name"),
        ("id: p\nversion: one\nja: {system: s}", "positive integer"),
        ("id: p\nversion: 0\nja: {system: s}", "positive integer"),
        ("id: p\nversion: 1\nja: {system: [1, 2]}", "must be a string"),
        ("id: p\nversion: 1\nja: just text", "must map template keys"),
        ("id: p\nversion: 1\ndescription: d", "no language sections"),
    ],
)
def test_malformed_prompt_files_are_rejected(text: str, message: str) -> None:
    with pytest.raises(PromptFileError, match=message):
        prompts.parse(yaml.safe_load(text), name="p")


def test_parse_a_valid_prompt() -> None:
    spec = prompts.parse(yaml.safe_load("id: p\nversion: 3\nja:\n  user: 'こんにちは {{ name }}'\n"), name="p")
    assert isinstance(spec, PromptSpec)
    assert spec.ref == "p@v3"
    assert spec.messages("ja", name="太郎")[0].model_dump() == {"role": "user", "content": "こんにちは 太郎"}
