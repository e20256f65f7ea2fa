"""Types that travel through the answering pipeline (guard in -> route -> agent -> compose -> guard out -> audit)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from retrieval._types import Language, Passage

Channel = Literal["api", "widget", "workbench", "cli"]
#: how the words of an answer were made
Mode = Literal["extractive", "llm", "llm-fallback", "refusal", "handoff"]
Outcome = Literal["pass", "block", "modify", "notice", "fail"]


class Request(BaseModel):
    tenant: str
    text: str
    channel: Channel = "api"
    conversation: str = Field(default_factory=lambda: uuid.uuid4().hex)
    #: None: detect from the text
    language: Language | None = None
    k: int = 5


class Citation(BaseModel):
    """A numbered source; ``[n]`` markers in the answer text refer to ``id``."""

    id: int
    doc_id: str
    title: str
    source: str
    url: str | None = None
    score: float


class Sentence(BaseModel):
    """One sentence of an answer and the citation ids that support it."""

    text: str
    citations: list[int] = Field(default_factory=list)


class Evidence(BaseModel):
    """What an agent gathered: passages (and, later, registry facts and computed numbers)."""

    passages: list[Passage] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    #: calibrated confidence that the passages answer the question (0..1)
    confidence: float = 0.0


class Draft(BaseModel):
    """Words made from evidence, before the outbound guard."""

    sentences: list[Sentence]
    citations: list[Citation]
    mode: Mode
    refused: bool = False
    notices: list[str] = Field(default_factory=list)
    #: False for messages that state no facts (a hand-off to a person): no citation is required
    factual: bool = True


class Decision(BaseModel):
    """One enforcement decision, recorded with the rule that made it."""

    rule: str
    outcome: Outcome
    detail: str = ""


class Answer(BaseModel):
    answer: str
    citations: list[Citation]
    refused: bool
    language: Language
    mode: Mode
    notices: list[str] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    conversation: str
    agent: str = "procedures_qa"
