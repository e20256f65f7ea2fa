from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from assistant._types import Draft, Evidence
from assistant.guards import Turn


@dataclass
class AgentContext:
    """What an agent may use besides the request: set by the pipeline per turn."""

    turn: Turn


class Agent(Protocol):
    name: str

    def run(self, ctx: AgentContext) -> tuple[Draft, Evidence]: ...

    def stream(self, ctx: AgentContext) -> Iterator[str | tuple[Draft, Evidence]]:
        """Text deltas as they are made, then the final (draft, evidence)."""
        ...
