"""What discovery returns: observed endpoints plus provider facts the rules consult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remediate.model import Endpoint


@dataclass
class Inventory:
    """Observed state across providers.

    `facts` holds provider catalogs the rules need but that are not resources themselves, keyed by
    provider-qualified names (for example `aws.ssl_policies`: region -> list of SslPolicy).
    """

    endpoints: list[Endpoint] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)

    def merge(self, other: Inventory) -> None:
        self.endpoints.extend(other.endpoints)
        self.facts.update(other.facts)
        self.providers.extend(p for p in other.providers if p not in self.providers)
