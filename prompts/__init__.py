"""Every template the product speaks with: versioned, one YAML file per prompt, per language.

A prompt file looks like::

    id: grounded_answer          # must equal the file name
    version: 1                   # bump on every wording change: audit logs record ``id@vN``
    description: ...
    ja: {system: "...", user: "..."}
    en: {system: "...", user: "..."}

Templates are jinja2 (``{{ question }}``, ``{% for p in passages %}``) rendered through
langchain-core's prompt templates, the product's templating library. Values are inserted as
data and never rendered again, so ``{{`` inside a question or a document stays literal text.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Template
from jinja2 import meta as jinja2_meta
from jinja2.sandbox import SandboxedEnvironment
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate
from pydantic import BaseModel, ConfigDict

from assistant.llm import ChatMessage, Role

PROMPTS_DIR = Path(__file__).resolve().parent

#: keys of a prompt file that are not languages
_META_KEYS = frozenset({"id", "version", "description"})
#: chat roles a language section may define, in the order they are sent
_CHAT_KEYS: tuple[tuple[str, Role], ...] = (("system", "system"), ("user", "user"))
_NAME = re.compile(r"^[a-z0-9_]+$")


class PromptFileError(ValueError):
    """A prompt file that is not a valid prompt (wrong shape, wrong types, id not matching its name)."""


class PromptSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    version: int
    description: str = ""
    #: language -> key -> jinja2 template
    templates: dict[str, dict[str, str]]

    @property
    def ref(self) -> str:
        """``grounded_answer@v1``: what the audit log records as the prompt used."""
        return f"{self.id}@v{self.version}"

    @property
    def languages(self) -> list[str]:
        return sorted(self.templates)

    def keys(self, language: str) -> list[str]:
        return sorted(self._section(language))

    def _section(self, language: str) -> dict[str, str]:
        try:
            return self.templates[language]
        except KeyError:
            raise ValueError(
                f"prompt {self.ref} has no language {language!r} (has: {', '.join(self.languages)})"
            ) from None

    def template(self, language: str, key: str) -> str:
        section = self._section(language)
        try:
            return section[key]
        except KeyError:
            raise ValueError(
                f"prompt {self.ref} [{language}] has no template {key!r} (has: {', '.join(sorted(section))})"
            ) from None

    @staticmethod
    def _check_vars(ref: str, needed: list[str], given: dict[str, Any]) -> None:
        # jinja2 renders a missing variable as "", which would silently send a prompt without
        # its question or passages; refuse instead
        missing = sorted(set(needed) - set(given))
        if missing:
            raise ValueError(f"prompt {ref} needs variables {missing}")

    def messages(self, language: str, **variables: Any) -> list[ChatMessage]:
        """The chat messages (system, then user) of this prompt in ``language``, rendered."""
        section = self._section(language)
        parts = [(role, section[key]) for key, role in _CHAT_KEYS if key in section]
        if not parts:
            raise ValueError(f"prompt {self.ref} [{language}] is not a chat prompt (no system/user template)")
        lc_roles = {"system": "system", "user": "human"}
        template = ChatPromptTemplate.from_messages(
            [(lc_roles[role], text) for role, text in parts], template_format="jinja2"
        )
        self._check_vars(self.ref, list(template.input_variables), variables)
        return [_from_langchain(m) for m in template.format_messages(**variables)]

    def text(self, language: str, key: str, **variables: Any) -> str:
        """One single-string template (e.g. a fixed wording of ``answer_wording``), rendered.

        These run several times per extractive answer, on the hot path: they are compiled once
        with the jinja2 engine langchain-core itself renders with (its ``PromptTemplate`` parses
        the template again on every call: 0.58 ms against 0.012 ms).
        """
        compiled, needed = _compile(self.template(language, key))
        self._check_vars(f"{self.ref} [{language}].{key}", needed, variables)
        return compiled.render(**variables).strip()


_JINJA = SandboxedEnvironment(autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=1024)
def _compile(source: str) -> tuple[Template, list[str]]:
    return _JINJA.from_string(source), sorted(jinja2_meta.find_undeclared_variables(_JINJA.parse(source)))


def _from_langchain(message: BaseMessage) -> ChatMessage:
    content = message.content if isinstance(message.content, str) else str(message.content)
    if isinstance(message, SystemMessage):
        return ChatMessage(role="system", content=content.strip())
    if isinstance(message, HumanMessage):
        return ChatMessage(role="user", content=content.strip())
    if isinstance(message, AIMessage):
        return ChatMessage(role="assistant", content=content.strip())
    raise ValueError(f"unsupported message type {type(message).__name__}")


def available() -> list[str]:
    """Names of all prompts shipped in this package."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))


def parse(data: Any, *, name: str) -> PromptSpec:
    """A PromptSpec from the parsed YAML of prompt ``name``; PromptFileError (a ValueError) on any malformed part."""
    if not isinstance(data, dict):
        raise PromptFileError(f"prompt {name!r}: expected a mapping at top level")
    if data.get("id") != name:
        raise PromptFileError(f"prompt {name!r}: id {data.get('id')!r} must equal the file name")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PromptFileError(f"prompt {name!r}: version must be a positive integer, got {version!r}")
    templates: dict[str, dict[str, str]] = {}
    for language, section in data.items():
        if language in _META_KEYS:
            continue
        if not isinstance(section, dict) or not section:
            raise PromptFileError(f"prompt {name!r}: language {language!r} must map template keys to strings")
        for key, value in section.items():
            if not isinstance(value, str):
                raise PromptFileError(f"prompt {name!r} [{language}].{key}: template must be a string")
        templates[str(language)] = {str(k): v for k, v in section.items()}
    if not templates:
        raise PromptFileError(f"prompt {name!r}: no language sections")
    return PromptSpec(id=name, version=version, description=str(data.get("description") or ""), templates=templates)


@cache
def load(name: str) -> PromptSpec:
    """The prompt ``name`` (file ``prompts/<name>.yaml``); ValueError if there is none."""
    if not _NAME.match(name):
        raise ValueError(f"invalid prompt name {name!r}")
    path = PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown prompt {name!r} (available: {', '.join(available())})")
    return parse(yaml.safe_load(path.read_text(encoding="utf-8")), name=name)


__all__ = ["PROMPTS_DIR", "PromptFileError", "PromptSpec", "available", "load", "parse"]
