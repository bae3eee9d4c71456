"""Who owns what: every upload and job belongs to a tenant (the API key that made it), and
every read and write is scoped to one tenant unless the caller may see them all."""

from __future__ import annotations

from dataclasses import dataclass

# With API keys off (the local default) everything belongs to this one tenant.
LOCAL_TENANT = "local"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a caller may reach: `tenant` owns what it creates; with `every_tenant` (an admin
    key, or the local service with keys off) it reads and acts on every tenant's too."""

    tenant: str
    every_tenant: bool = False

    @property
    def only_tenant(self) -> str | None:
        """The tenant to filter by, or None when the scope reaches every tenant."""
        return None if self.every_tenant else self.tenant

    def reaches(self, owner: str) -> bool:
        return self.every_tenant or owner == self.tenant


# The operator's scope (CLI commands run on the server itself): everything.
OPERATOR = Scope(LOCAL_TENANT, every_tenant=True)
