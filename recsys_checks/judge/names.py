"""Is a tenant or surface one the deployment has? A typo must read as a typo, not as data loss.

``dmeo`` or ``hme`` find no manifest and no version records, which is also what a surface whose manifest was lost
looks like. :func:`unknown_name` tells the two apart from what the deployment says: the service answers ``404
RECSYS_TENANT_NOT_FOUND`` for a tenant it does not know, and the registry lists the tenants and surfaces it has
(``current/<tenant>/<surface>/`` and ``records/<tenant>/<surface>/``), from which the close matches are offered
("did you mean home?"). It is asked only once a name was not found, and a failure to ask is never a finding: it
answers None (cannot tell) and the caller says what it said before.
"""

from __future__ import annotations

from dataclasses import dataclass

from recsys_checks.core.errors import BadInput, ChecksError, ServiceProblem
from recsys_checks.reach.service import ServiceClient
from recsys_checks.reach.settings import Target
from recsys_checks.reach.store.router import TargetStores

# The most names a message lists (a registry may hold thousands of tenants); close matches are always shown.
MAX_LISTED = 12


@dataclass(frozen=True)
class UnknownName:
    """A tenant or surface the deployment does not have: ``what`` is ``tenant`` or ``surface``, ``message`` one
    sentence for a person (with the close matches), ``matches`` the close matches."""

    what: str
    name: str
    message: str
    matches: tuple[str, ...]

    @property
    def cause(self) -> str:
        return f"unknown_{self.what}"

    def to_dict(self) -> dict[str, object]:
        return {"what": self.what, "name": self.name, "message": self.message, "matches": list(self.matches)}


def service_knows_tenant(target: Target, tenant: str, surface: str) -> bool | None:
    """False when the service answers ``404 RECSYS_TENANT_NOT_FOUND`` for ``tenant`` (a read-only validate
    request), True when it answers otherwise, None without a service or when it cannot be asked."""
    if not target.base_url:
        return None
    try:
        with ServiceClient(target) as client:
            client.validate(tenant, ServiceClient.recommend_body(surface, user_id="recsys-checks-name-check"))
    except ServiceProblem as exc:
        if exc.status == 404 and exc.code == "RECSYS_TENANT_NOT_FOUND":
            return False
        return None if exc.status in (401, 403) or exc.status >= 500 else True
    except ChecksError:
        return None
    return True


def registry_names(target: Target, stores: TargetStores, tenant: str | None = None) -> list[str] | None:
    """The tenants of the registry (``tenant`` None) or the surfaces it has for ``tenant``, from ``current/`` and
    ``records/``; None when the registry cannot be listed from here."""
    try:
        root = target.registry_root()
    except BadInput:
        return None
    below = f"{tenant}/" if tenant is not None else ""
    names: set[str] = set()
    try:
        for part in ("current", "records"):
            names.update(n.strip("/") for n in stores.children(f"{root}/{part}/{below}"))
    except ChecksError:
        return None
    except OSError:
        return None
    return sorted(n for n in names if n)


def registry_hint(target: Target, stores: TargetStores | None, tenant: str) -> str:
    """``; did you mean demo? (tenants in the registry: acme, demo)`` for a tenant the registry does not have, or
    "" (it has it, has none, or cannot be listed)."""
    own = stores is None
    st = stores or TargetStores(target)
    try:
        tenants = registry_names(target, st)
    finally:
        if own:
            st.close()
    if not tenants or tenant in tenants:
        return ""
    matches, listed = _listed(tenant, tenants)
    return (f"; did you mean {' or '.join(matches)}?" if matches else "") + f" (tenants in the registry: {listed})"


def _listed(name: str, names: list[str]) -> tuple[tuple[str, ...], str]:
    import difflib  # only for a name that is not there

    matches = tuple(difflib.get_close_matches(name, names, n=3, cutoff=0.6))
    shown = names[:MAX_LISTED]
    more = f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else ""
    return matches, ", ".join(shown) + more


def unknown_name(target: Target, tenant: str, surface: str, *, stores: TargetStores | None = None,
                 ask_service: bool = True) -> UnknownName | None:
    """Why ``tenant``/``surface`` is not a name this deployment has, or None when it has both (or cannot tell)."""
    own = stores is None
    st = stores or TargetStores(target)
    try:
        tenants = registry_names(target, st)
        # The service is asked only when the registry does not settle it (one read-only request).
        knows = (service_knows_tenant(target, tenant, surface)
                 if ask_service and (tenants is None or tenant not in tenants) else None)
        if knows is False or (tenants is not None and tenants and tenant not in tenants and knows is not True):
            matches, listed = _listed(tenant, tenants or [])
            said = ("the service does not know tenant " + repr(tenant) + " (404 RECSYS_TENANT_NOT_FOUND)"
                    if knows is False else f"tenant {tenant!r} is not in the registry")
            if knows is False and tenants is not None and tenant not in tenants:
                said += " and the registry has no such tenant"
            hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
            where = f" (tenants in the registry: {listed})" if listed else ""
            return UnknownName("tenant", tenant, f"{said}{hint}{where}: check the tenant id", matches)
        if tenants is None or tenant not in tenants:
            return None
        surfaces = registry_names(target, st, tenant)
        if not surfaces or surface in surfaces:
            return None
        matches, listed = _listed(surface, surfaces)
        hint = f"; did you mean {' or '.join(matches)}?" if matches else ""
        return UnknownName("surface", surface,
                           f"the registry has no surface {surface!r} for tenant {tenant}{hint} (surfaces of "
                           f"{tenant}: {listed}): check the surface name, or publish the surface if it is new",
                           matches)
    finally:
        if own:
            st.close()
