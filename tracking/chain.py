"""The audit chain: each trace event's hash covers its content and the previous event's hash.

Pure functions, so ``audit verify`` and an offline evidence check compute exactly what the hub
computed when it appended. Editing, deleting or inserting any event breaks every later link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

GENESIS = "0" * 64

# Retention (``hub.retention``) blanks a purged document's events in place: a *tombstone* keeps
# ``seq``, ``at``, ``document_id``, ``prev_hash`` and ``hash`` and loses the rest. Its hash can no
# longer be recomputed, but the next event's link and the signed checkpoints still cover it, so
# the chain stays verifiable. Each purge is itself recorded by a ``PURGED`` event naming the
# document and how many of its events became tombstones.
TOMBSTONE = "tombstone"
PURGED = "purged"


def canonical_detail(detail: Mapping[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def event_hash(
    prev_hash: str,
    *,
    seq: int,
    at: datetime,
    kind: str,
    actor: str,
    document_id: str | None,
    delivery_id: str | None,
    detail: str,
) -> str:
    body = json.dumps(
        [seq, at.isoformat(timespec="microseconds"), kind, actor, document_id, delivery_id, detail],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()
