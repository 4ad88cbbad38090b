"""What discovery returns: observed endpoints plus provider facts the rules consult."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from remediate.model import Endpoint
from remediate.units import FailedUnit


@dataclass
class Inventory:
    """Observed state across providers.

    `facts` holds provider catalogs the rules need but that are not resources themselves, keyed by
    provider-qualified names (for example `aws.ssl_policies`: region -> list of SslPolicy).
    """

    endpoints: list[Endpoint] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    providers: list[str] = field(default_factory=list)
    failures: list[FailedUnit] = field(default_factory=list)
    """Units that could not be read (see `remediate.units`)."""

    def merge(self, other: Inventory) -> None:
        """Add `other`'s endpoints, failures and facts; facts that are mappings (catalogs by
        region) are merged key by key, so units of one provider add to each other's."""
        self.endpoints.extend(other.endpoints)
        self.failures.extend(other.failures)
        for key, value in other.facts.items():
            mine = self.facts.get(key)
            if isinstance(mine, dict) and isinstance(value, dict):
                self.facts[key] = {**mine, **value}
            else:
                self.facts[key] = value
        self.providers.extend(p for p in other.providers if p not in self.providers)
