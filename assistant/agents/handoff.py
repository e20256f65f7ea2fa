"""A person can always be reached instead: requests for a human get the tenant's contact at once."""

from __future__ import annotations

import re
from collections.abc import Iterator

from assistant._types import Draft, Evidence, Sentence
from assistant.agents._base import AgentContext
from assistant.compose import ExtractiveComposer

HANDOFF_PATTERN = re.compile(
    r"人と話|人間と|職員|担当者|オペレーター|窓口の人|電話で相談|"
    r"talk to (?:a )?(?:person|human|someone|staff)|speak (?:to|with) (?:a )?(?:person|human|someone|staff)|"
    r"real person|human agent|operator",
    re.I,
)


class HandoffAgent:
    name = "handoff"

    def __init__(self, composer: ExtractiveComposer) -> None:
        self.composer = composer

    def run(self, ctx: AgentContext) -> tuple[Draft, Evidence]:
        turn = ctx.turn
        text = self.composer.phrase(turn.language, "handoff", contact=turn.tenant.contact_for(turn.language))
        turn.decide("human.reachable", "pass", "hand-off requested")
        return Draft(sentences=[Sentence(text=text)], citations=[], mode="handoff", factual=False), Evidence()

    def stream(self, ctx: AgentContext) -> Iterator[str | tuple[Draft, Evidence]]:
        yield self.run(ctx)
