"""Citizen Q&A over the procedure registry and the tenant's documents, every sentence cited."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from assistant._types import Draft, Evidence
from assistant.agents._base import AgentContext
from assistant.compose import ExtractiveComposer, unsupported_intent
from assistant.confidence import Calibration, features
from retrieval._types import SearchFilters
from retrieval.index import Searcher

if TYPE_CHECKING:
    from assistant.compose_llm import LLMComposer

log = logging.getLogger(__name__)


class ProceduresQAAgent:
    name = "procedures_qa"

    def __init__(
        self,
        searcher: Searcher,
        composer: ExtractiveComposer,
        calibration: Calibration,
        llm_composer: LLMComposer | None = None,
        *,
        threshold: float | None = None,
    ) -> None:
        self.searcher = searcher
        self.composer = composer
        self.calibration = calibration
        self.llm_composer = llm_composer
        self.threshold = calibration.threshold if threshold is None else threshold

    def gather(self, ctx: AgentContext) -> Evidence:
        request = ctx.turn.request
        passages = self.searcher.search(request.text, SearchFilters(tenant=request.tenant), k=max(request.k, 5))
        feats = features(request.text, passages, ctx.turn.language)
        confidence = self.calibration.confidence(feats)
        ctx.turn.decide(
            "answer.grounded",
            "pass" if confidence >= self.threshold else "block",
            f"confidence {confidence:.3f} (threshold {self.threshold:.3f}); "
            + ", ".join(f"{k}={v:.3f}" for k, v in feats.items()),
        )
        return Evidence(passages=passages[: request.k], facts={"features": feats}, confidence=confidence)

    def _refusal_or_none(self, ctx: AgentContext, evidence: Evidence) -> Draft | None:
        turn = ctx.turn
        contact = turn.tenant.contact_for(turn.language)
        if evidence.confidence < self.threshold or not evidence.passages:
            return self.composer.refusal(turn.language, contact)
        intent = unsupported_intent(turn.request.text)
        if intent is not None:
            turn.decide("answer.supported", "block", f"the sources hold no facts of kind {intent!r}")
            return self.composer.refusal(turn.language, contact, pointer=evidence.passages[0])
        return None

    def run(self, ctx: AgentContext) -> tuple[Draft, Evidence]:
        evidence = self.gather(ctx)
        refusal = self._refusal_or_none(ctx, evidence)
        if refusal is not None:
            return refusal, evidence
        return self._compose(ctx, evidence), evidence

    def _compose(self, ctx: AgentContext, evidence: Evidence) -> Draft:
        turn = ctx.turn
        if self.llm_composer is not None:
            from assistant.llm import LLMError

            turn.prompt_ref = self.llm_composer.prompt_ref
            try:
                draft = self.llm_composer.compose(turn.request.text, turn.language, evidence.passages)
                turn.decide("compose.llm", "pass", self.llm_composer.llm.model_id)
                return draft
            except LLMError as exc:
                log.warning("LLM failed, falling back to the extractive composer: %s", exc)
                turn.decide("compose.llm", "fail", str(exc)[:200])
                draft = self.composer.compose(turn.request.text, turn.language, evidence.passages)
                return draft.model_copy(
                    update={
                        "mode": "llm-fallback",
                        "notices": [self.composer.phrase(turn.language, "llm_fallback_notice")],
                    }
                )
        return self.composer.compose(turn.request.text, turn.language, evidence.passages)

    def stream(self, ctx: AgentContext) -> Iterator[str | tuple[Draft, Evidence]]:
        """LLM deltas as they arrive; an extractive (or fallback) answer comes whole at the end."""
        evidence = self.gather(ctx)
        refusal = self._refusal_or_none(ctx, evidence)
        if refusal is not None:
            yield refusal, evidence
            return
        if self.llm_composer is None:
            yield self._compose(ctx, evidence), evidence
            return
        from assistant.llm import LLMError

        turn = ctx.turn
        turn.prompt_ref = self.llm_composer.prompt_ref
        pieces: list[str] = []
        try:
            for delta in self.llm_composer.stream(turn.request.text, turn.language, evidence.passages):
                pieces.append(delta)
                yield delta
            draft = self.llm_composer.parse("".join(pieces), evidence.passages)
            turn.decide("compose.llm", "pass", self.llm_composer.llm.model_id)
            yield draft, evidence
        except LLMError as exc:
            log.warning("LLM stream failed, falling back to the extractive composer: %s", exc)
            turn.decide("compose.llm", "fail", str(exc)[:200])
            draft = self.composer.compose(turn.request.text, turn.language, evidence.passages)
            yield (
                draft.model_copy(
                    update={
                        "mode": "llm-fallback",
                        "notices": [self.composer.phrase(turn.language, "llm_fallback_notice")],
                    }
                ),
                evidence,
            )
