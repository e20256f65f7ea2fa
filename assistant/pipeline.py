"""The only road: guard in -> route -> agent -> compose -> guard out -> audit.

Every channel (API, widget, workbench, CLI) calls ``Pipeline.answer`` or ``Pipeline.stream``;
no agent is reachable any other way, so every governance rule applies to every answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from assistant._types import Answer, Draft, Evidence, Request
from assistant.agents import Agent, AgentContext, HandoffAgent, ProceduresQAAgent
from assistant.agents.handoff import HANDOFF_PATTERN
from assistant.compose import ExtractiveComposer, render
from assistant.confidence import Calibration
from assistant.guards import AuditSink, CitationGuard, InboundGuard, InputValidation, LogAudit, OutboundGuard, Turn
from assistant.language import detect_language
from assistant.services import Services

CALIBRATION_FILE = "calibration.json"
_SENTENCE_END = re.compile(r"(?<=[。！？!?])|(?<=[.])\s")


class Router:
    """Which agent serves a request: a person when asked for, otherwise the procedures Q&A."""

    def __init__(self, agents: dict[str, Agent], default: str) -> None:
        self.agents = agents
        self.default = default

    def route(self, request: Request) -> Agent:
        if "handoff" in self.agents and HANDOFF_PATTERN.search(request.text):
            return self.agents["handoff"]
        return self.agents[self.default]


class Pipeline:
    def __init__(
        self,
        services: Services,
        *,
        router: Router | None = None,
        inbound: Sequence[InboundGuard] | None = None,
        outbound: Sequence[OutboundGuard] | None = None,
        audit: AuditSink | None = None,
        composer: ExtractiveComposer | None = None,
        calibration: Calibration | None = None,
    ) -> None:
        self.services = services
        settings = services.settings
        self.composer = composer or ExtractiveComposer()
        self.calibration = calibration or Calibration.load(settings.data_dir / CALIBRATION_FILE)
        self.router = router or Router(
            {
                "procedures_qa": ProceduresQAAgent(
                    services.searcher,
                    self.composer,
                    self.calibration,
                    self._llm_composer(),
                    threshold=settings.answer_threshold,
                ),
                "handoff": HandoffAgent(self.composer),
            },
            default="procedures_qa",
        )
        self.inbound: list[InboundGuard] = list(inbound or [InputValidation(settings.max_question_chars)])
        self.outbound: list[OutboundGuard] = list(outbound or [CitationGuard()])
        self.audit: AuditSink = audit or LogAudit()

    def _llm_composer(self) -> Any:
        llm = self.services.llm
        if llm is None:
            return None
        from assistant.compose_llm import LLMComposer

        return LLMComposer(llm)

    # -- steps ------------------------------------------------------------------------------

    def _begin(self, request: Request) -> Turn:
        tenant = self.services.tenants.get(request.tenant)  # UnknownTenant -> 404 at the API
        language = request.language or detect_language(request.text)
        turn = Turn(request=request, tenant=tenant, language=language)
        for guard in self.inbound:
            turn.request = guard.check(turn.request, turn)
        if request.language is None:  # guards may have changed the text (masking)
            turn.language = detect_language(turn.request.text)
        return turn

    def _finish(self, turn: Turn, draft: Draft, evidence: Evidence) -> Answer:
        for guard in self.outbound:
            draft = guard.check(draft, turn)
        if draft.refused and (not draft.sentences or draft.mode != "refusal"):
            # every refusal reads the same and says where to ask, whoever decided it (guard or LLM)
            draft = self.composer.refusal(turn.language, turn.tenant.contact_for(turn.language))
        notices = [*draft.notices, *turn.notices]
        notices.append(self.composer.phrase(turn.language, "ai_disclosure"))
        if not draft.refused and draft.factual:  # a refusal or hand-off already names the contact
            notices.append(
                self.composer.phrase(turn.language, "contact_at", contact=turn.tenant.contact_for(turn.language))
            )
        turn.decide("disclosure.ai", "pass", "AI disclosure and human contact attached")
        answer = Answer(
            answer=render(draft, turn.language),
            citations=draft.citations,
            refused=draft.refused,
            language=turn.language,
            mode=draft.mode if not draft.refused else "refusal",
            notices=notices,
            decisions=turn.decisions,
            conversation=turn.request.conversation,
            agent=turn.agent,
        )
        self.audit.record(turn, answer)
        return answer

    # -- entry points ---------------------------------------------------------------------------

    def answer(self, request: Request) -> Answer:
        turn = self._begin(request)
        agent = self.router.route(turn.request)
        turn.agent = agent.name
        draft, evidence = agent.run(AgentContext(turn=turn))
        return self._finish(turn, draft, evidence)

    def stream(self, request: Request) -> Iterator[dict[str, Any]]:
        """Server-sent events: ``meta``, ``delta`` (guarded sentences), then ``done`` with the whole answer.

        LLM output is released a sentence at a time, and only sentences that cite a passage of
        this turn: the outbound rule is applied before any text reaches the citizen.
        """
        turn = self._begin(request)
        agent = self.router.route(turn.request)
        turn.agent = agent.name
        yield {
            "type": "meta",
            "language": turn.language,
            "agent": agent.name,
            "conversation": turn.request.conversation,
        }
        buffer = ""
        released: list[str] = []
        final: tuple[Draft, Evidence] | None = None
        valid = set(range(1, request.k + 1))  # citation numbers the passages of this turn can have
        for item in agent.stream(AgentContext(turn=turn)):
            if isinstance(item, tuple):
                final = item
                break
            buffer += item
            *complete, buffer = _SENTENCE_END.split(buffer)
            for sentence in complete:
                if sentence.strip() and _cites(sentence, valid):
                    released.append(sentence)
                    yield {"type": "delta", "text": sentence}
        if final is None:  # an agent must end with its draft
            raise RuntimeError(f"agent {agent.name} ended its stream without a draft")
        answer = self._finish(turn, *final)
        if not released or final[0].mode != "llm":
            # extractive, fallback and refusal answers are sent whole, already guarded
            yield {"type": "delta", "text": answer.answer, "replace": bool(released)}
        yield {"type": "done", "answer": answer.model_dump()}


def _cites(sentence: str, valid: set[int]) -> bool:
    return any(int(n) in valid for n in re.findall(r"\[(\d+)\]", sentence))


__all__ = ["CALIBRATION_FILE", "Pipeline", "Router"]
