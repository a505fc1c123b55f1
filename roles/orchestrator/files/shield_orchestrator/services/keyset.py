"""The cursors of the keyset-paginated listings (GET /jobs, GET /repos).

A cursor is the last row's ``(created_at, id)`` plus what the listing was filtered by,
base64url-encoded JSON ``{"c": created_at, <id key>: id, <scope key>: filters}``: opaque to
clients, checked on the way back. Each listing names its keys (:class:`CursorFormat`), so a
cursor of one listing is not one of the other's.

Errors: :class:`BadCursor` (malformed, another listing's, or made for other filters); the API
answers it with a 422 naming the ``cursor`` query parameter (api/errors.py).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import uuid
from dataclasses import dataclass

from shield_orchestrator.errors import ShieldError


class BadCursor(ShieldError):  # noqa: N818 (named for what it is, like JobNotFound)
    """The cursor is malformed, or belongs to a query with other filters."""


@dataclass(frozen=True, slots=True)
class CursorFormat:
    """One listing's cursor: ``listing`` and ``mismatch`` are the messages of a BadCursor."""

    listing: str  # "GET /jobs": a cursor that does not decode is "not a cursor of <listing>"
    id_key: str  # the JSON key of the row's id
    scope_key: str  # the JSON key of the filters the cursor was made for
    mismatch: str  # the message of a cursor made for other filters

    def encode(self, created_at: dt.datetime, row_id: str, scope: str | None) -> str:
        raw = {"c": created_at.isoformat(), self.id_key: row_id, self.scope_key: scope}
        return base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":")).encode()).decode()

    def decode(self, cursor: str, scope: str | None) -> tuple[dt.datetime, str]:
        """The ``(created_at, id)`` a cursor continues after; BadCursor otherwise."""
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
            created = dt.datetime.fromisoformat(raw["c"])
            row_id = str(uuid.UUID(raw[self.id_key]))
            made_for = raw[self.scope_key]
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise BadCursor(f"not a cursor of {self.listing}") from exc
        if created.tzinfo is None or made_for != scope:
            raise BadCursor(self.mismatch)
        return created, row_id
