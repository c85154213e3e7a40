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
