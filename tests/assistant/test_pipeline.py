from __future__ import annotations

import logging

import pytest

from assistant._types import Request
from assistant.confidence import Calibration
from assistant.guards import RequestRejected
from assistant.llm import LLMError, TestModel
from assistant.pipeline import Pipeline
from assistant.services import Services
from assistant.tenants import UnknownTenant


def ask(pipeline: Pipeline, text: str, tenant: str = "hakodate") -> object:
    return pipeline.answer(Request(tenant=tenant, text=text))


def test_a_procedure_question_gets_a_cited_extractive_answer(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか"))
    assert not answer.refused and answer.mode == "extractive" and answer.language == "ja"
    assert answer.citations[0].doc_id == "proc-13165"
    assert "市役所・町村役場" in answer.answer
    assert "[1]" in answer.answer
    assert answer.citations[0].source.startswith("デジタル庁")
    # disclosure and a way to a person travel with every answer
    assert any("AI" in n for n in answer.notices)
    assert any("函館市役所" in n for n in answer.notices)
    rules = {d.rule for d in answer.decisions}
    assert {"input.valid", "answer.grounded", "output.cited", "disclosure.ai"} <= rules


def test_every_sentence_carries_a_citation(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="フライパンは何ごみですか"))
    assert not answer.refused
    assert answer.citations[0].doc_id.startswith("garbage-hakodate-")
    for sentence in answer.answer.split("。"):
        if sentence.strip():
            assert "[" in sentence, sentence


def test_english_questions_get_english_answers(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="Where do I file 戸籍の届出（出生）?", language="en"))
    assert answer.language == "en"
    assert "Where to file" in answer.answer or answer.refused


def test_unanswerable_questions_are_refused_with_where_to_ask(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="明日の天気と株価の見通しを教えて"))
    assert answer.refused and answer.mode == "refusal"
    assert answer.answer.startswith("わかりません")
    assert "函館市役所" in answer.answer
    assert answer.citations == []


def test_facts_the_sources_never_hold_are_refused_with_a_pointer(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（出生）の受付時間は何時までですか"))
    assert answer.refused
    assert answer.answer.startswith("わかりません")
    assert [c.doc_id for c in answer.citations] == ["proc-13165"]  # offered as where to look, not as an answer


def test_asking_for_a_person_is_answered_at_once(pipeline: Pipeline) -> None:
    answer = pipeline.answer(Request(tenant="hakodate", text="職員の人と話したいです"))
    assert answer.agent == "handoff" and answer.mode == "handoff" and not answer.refused
    assert "函館市役所" in answer.answer


@pytest.mark.parametrize("text", ["", "   ", "\x00\x01"])
def test_empty_questions_are_rejected(pipeline: Pipeline, text: str) -> None:
    with pytest.raises(RequestRejected) as info:
        pipeline.answer(Request(tenant="hakodate", text=text))
    assert info.value.status == 422


def test_huge_questions_are_rejected(pipeline: Pipeline) -> None:
    with pytest.raises(RequestRejected) as info:
        pipeline.answer(Request(tenant="hakodate", text="あ" * 100_000))
    assert info.value.status == 413


def test_unknown_tenants_are_rejected(pipeline: Pipeline) -> None:
    with pytest.raises(UnknownTenant):
        pipeline.answer(Request(tenant="atlantis", text="出生届"))


def test_the_audit_record_holds_decisions_but_not_the_question(
    pipeline: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tosei.audit"):
        pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（婚姻）はどこに出す"))
    records = [r.getMessage() for r in caplog.records if r.name == "tosei.audit"]
    assert len(records) == 1
    assert "婚姻" not in records[0] and "question_sha256" in records[0]
    assert "answer.grounded" in records[0]


def test_llm_answers_are_cited_and_marked(services: Services, hash_calibration: Calibration) -> None:
    model = TestModel()
    services._overrides["llm"] = model
    pipeline = Pipeline(services, calibration=hash_calibration)
    answer = pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか"))
    assert answer.mode == "llm" and not answer.refused
    assert "[1]" in answer.answer
    assert model.calls  # the model really was asked


def test_a_failing_llm_falls_back_to_extractive_with_a_notice(
    services: Services, hash_calibration: Calibration
) -> None:
    services._overrides["llm"] = TestModel(error=LLMError("server stopped"))
    pipeline = Pipeline(services, calibration=hash_calibration)
    answer = pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか"))
    assert answer.mode == "llm-fallback" and not answer.refused
    assert "市役所・町村役場" in answer.answer
    assert any("AI" in n and ("利用できない" in n or "unavailable" in n) for n in answer.notices)
    assert any(d.rule == "compose.llm" and d.outcome == "fail" for d in answer.decisions)


def test_streaming_sends_meta_deltas_and_the_whole_answer(pipeline: Pipeline) -> None:
    events = list(pipeline.stream(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか")))
    assert events[0]["type"] == "meta" and events[-1]["type"] == "done"
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert deltas and deltas[-1] == events[-1]["answer"]["answer"]


def test_streaming_llm_releases_only_cited_sentences(services: Services, hash_calibration: Calibration) -> None:
    services._overrides["llm"] = TestModel(reply="出生届は市役所に出します[1]。根拠のない文です。")
    pipeline = Pipeline(services, calibration=hash_calibration)
    events = list(pipeline.stream(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか")))
    deltas = [e["text"] for e in events if e["type"] == "delta"]
    assert any("市役所" in d for d in deltas)
    assert not any("根拠のない" in d for d in deltas)
    done = events[-1]["answer"]
    assert "根拠のない" not in done["answer"] and done["mode"] == "llm"


def test_an_llm_that_does_not_know_gives_the_standard_refusal(
    services: Services, hash_calibration: Calibration
) -> None:
    services._overrides["llm"] = TestModel(reply="わかりません。")
    pipeline = Pipeline(services, calibration=hash_calibration)
    answer = pipeline.answer(Request(tenant="hakodate", text="戸籍の届出（出生）はどこに出しますか"))
    assert answer.refused and answer.mode == "refusal"
    assert answer.answer.startswith("わかりません") and "函館市役所" in answer.answer
