"""The guard-in, guard-out and audit extension points of the pipeline, and their baseline rules.

Every guard records what it decided as a ``Decision`` with its rule id on the turn; the
governance issue adds PII masking, injection defence and the tamper-evident audit behind the
same three Protocols.
"""

from __future__ import annotations

import json
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol

from assistant._types import Answer, Decision, Draft, Outcome, Request, Sentence
from assistant.tenants import Tenant
from retrieval._types import Language, content_hash

audit_logger = logging.getLogger("tosei.audit")


class RequestRejected(ValueError):
    """Bad input: the API answers 4xx with ``message``; nothing is stored."""

    def __init__(self, rule: str, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.status = status


@dataclass
class Turn:
    """Everything one request accumulates on its way through the pipeline."""

    request: Request
    tenant: Tenant
    language: Language
    agent: str = ""
    started: float = field(default_factory=time.perf_counter)
    decisions: list[Decision] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    prompt_ref: str | None = None

    def decide(self, rule: str, outcome: Outcome, detail: str = "") -> None:
        self.decisions.append(Decision(rule=rule, outcome=outcome, detail=detail))

    @property
    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


class InboundGuard(Protocol):
    rule: str

    def check(self, request: Request, turn: Turn) -> Request: ...


class OutboundGuard(Protocol):
    rule: str

    def check(self, draft: Draft, turn: Turn) -> Draft: ...


class AuditSink(Protocol):
    def record(self, turn: Turn, answer: Answer) -> None: ...


# --------------------------------------------------------------------------------------------
# baseline inbound rules
# --------------------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class InputValidation:
    """A question must be text a person could have typed: not empty, not huge, no control bytes."""

    rule = "input.valid"

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars

    def check(self, request: Request, turn: Turn) -> Request:
        text = _CONTROL.sub(" ", unicodedata.normalize("NFC", request.text)).strip()
        if not text:
            turn.decide(self.rule, "block", "empty question")
            raise RequestRejected(self.rule, "question is empty", 422)
        if len(text) > self.max_chars:
            turn.decide(self.rule, "block", f"{len(text)} chars > {self.max_chars}")
            raise RequestRejected(self.rule, f"question is {len(text)} characters; the limit is {self.max_chars}", 413)
        turn.decide(self.rule, "pass")
        return request.model_copy(update={"text": text})


# --------------------------------------------------------------------------------------------
# baseline outbound rules
# --------------------------------------------------------------------------------------------


class CitationGuard:
    """Every factual sentence carries a citation to a source that is in the answer; others are cut."""

    rule = "output.cited"

    def check(self, draft: Draft, turn: Turn) -> Draft:
        if draft.refused or not draft.factual:
            turn.decide(self.rule, "pass", "refusal" if draft.refused else "no factual claims")
            return draft
        valid = {c.id for c in draft.citations}
        kept: list[Sentence] = []
        dropped = 0
        for s in draft.sentences:
            cites = [c for c in s.citations if c in valid]
            if cites:
                kept.append(s.model_copy(update={"citations": cites}))
            else:
                dropped += 1
        if not kept:
            turn.decide(self.rule, "block", f"no cited sentence ({dropped} uncited)")
            return draft.model_copy(update={"sentences": [], "refused": True})
        used = {c for s in kept for c in s.citations}
        citations = [c for c in draft.citations if c.id in used]
        turn.decide(self.rule, "modify" if dropped else "pass", f"dropped {dropped} uncited sentences")
        return draft.model_copy(update={"sentences": kept, "citations": citations})


# --------------------------------------------------------------------------------------------
# baseline audit: metadata only (no question text: it may hold personal data until it is masked)
# --------------------------------------------------------------------------------------------


class LogAudit:
    """One JSON line per interaction to the ``tosei.audit`` logger, with every rule decision."""

    def record(self, turn: Turn, answer: Answer) -> None:
        audit_logger.info(
            json.dumps(
                {
                    "ts": time.time(),
                    "tenant": turn.tenant.id,
                    "channel": turn.request.channel,
                    "conversation": turn.request.conversation,
                    "question_sha256": content_hash(turn.request.text),
                    "language": turn.language,
                    "agent": turn.agent,
                    "mode": answer.mode,
                    "refused": answer.refused,
                    "citations": [c.doc_id for c in answer.citations],
                    "decisions": [d.model_dump() for d in turn.decisions],
                    "prompt": turn.prompt_ref,
                    "ms": round(turn.elapsed_ms, 1),
                },
                ensure_ascii=False,
            )
        )
