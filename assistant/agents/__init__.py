"""Agents: each gathers evidence for one kind of request and turns it into a Draft."""

from assistant.agents._base import Agent, AgentContext
from assistant.agents.handoff import HandoffAgent
from assistant.agents.procedures_qa import ProceduresQAAgent

__all__ = ["Agent", "AgentContext", "HandoffAgent", "ProceduresQAAgent"]
