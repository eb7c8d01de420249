"""What a key may see (``api.md``, "Keys and what each may see").

- an organization key sees its organization;
- a reseller key sees every organization whose *current* reseller it is, and the reseller;
- a platform key sees everything.

``authorize`` turns a request's ids into the ids to export, or raises ``NotFound``: the same
error for an id that does not exist and for one outside the key's scope, so a key never
learns whether another tenant's id exists. Existence is checked against the warehouse's own
dimensions (``Exporter.resolve_scope``) before any permission, and every check is a lookup in
memory: no id ever reaches SQL text.
"""

from __future__ import annotations

from callmetrics.api.keys import ApiKey
from callmetrics.errors import UserError
from callmetrics.exporter import Exporter


class NotFound(Exception):
    """An unknown id, or one outside the key's scope (the caller cannot tell which)."""


def authorize(
    key: ApiKey, exporter: Exporter, organization_id: str | None, reseller_id: str | None
) -> tuple[str | None, str | None]:
    """The (organization, reseller) to export for this key and request."""
    if organization_id is None and reseller_id is None and key.scope != "platform":
        # Everything the key sees: its organization, or its reseller's roll-up.
        if key.scope == "organization":
            organization_id = key.scope_id
        else:
            reseller_id = key.scope_id
    try:
        exporter.resolve_scope(organization_id, reseller_id)
    except UserError:
        raise NotFound from None
    if key.scope == "platform":
        allowed = True
    elif key.scope == "organization":
        allowed = organization_id is not None and organization_id == key.scope_id
    elif organization_id is not None:
        allowed = exporter.reseller_of(organization_id) == key.scope_id
    else:
        allowed = reseller_id == key.scope_id
    if not allowed:
        raise NotFound
    return organization_id, reseller_id
