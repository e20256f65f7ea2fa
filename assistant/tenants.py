"""Tenants: who may read which content, and where each sends a citizen who needs a person."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from retrieval._types import Language


class UnknownTenant(LookupError):
    def __init__(self, tenant: str, known: list[str]) -> None:
        super().__init__(f"unknown tenant {tenant!r}; known tenants: {', '.join(known)}")
        self.tenant = tenant


class Tenant(BaseModel):
    id: str
    name: str
    name_en: str
    contact: dict[str, str]
    url: str | None = None

    def contact_for(self, language: Language) -> str:
        return self.contact.get(language) or self.contact.get("ja") or self.name


class TenantRegistry:
    def __init__(self, tenants: dict[str, Tenant]) -> None:
        self._tenants = tenants

    @classmethod
    def from_yaml(cls, path: Path) -> TenantRegistry:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tenants = {tid: Tenant(id=tid, **spec) for tid, spec in (raw.get("tenants") or {}).items()}
        if not tenants:
            raise ValueError(f"{path} defines no tenants")
        return cls(tenants)

    def get(self, tenant: str) -> Tenant:
        try:
            return self._tenants[tenant]
        except KeyError:
            raise UnknownTenant(tenant, sorted(self._tenants)) from None

    def ids(self) -> list[str]:
        return sorted(self._tenants)
