"""Tampering with evidence bundles, as a forger would: shared by the integration and acceptance
tests of ``tracking.evidence``."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import zipfile
from collections.abc import Mapping

from tracking.audit import recompute
from tracking.evidence import EVENTS, MANIFEST, event_line, parse_events, sha256


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(
    bundle: bytes, changes: Mapping[str, bytes | None], *, fix_manifest: bool = False
) -> bytes:
    """*bundle* with files replaced, added or (None) removed; with *fix_manifest* the manifest
    is rewritten to match, as a careful forger would."""
    files = members(bundle)
    for name, data in changes.items():
        if data is None:
            files.pop(name, None)
        else:
            files[name] = data
    if fix_manifest:
        manifest = json.loads(files[MANIFEST])
        manifest["files"] = {
            name: {"sha256": sha256(data), "size": len(data)}
            for name, data in files.items()
            if name != MANIFEST
        }
        files[MANIFEST] = json.dumps(manifest).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def edit_event(bundle: bytes, index: int, *, rehash: bool) -> bytes:
    """Change the actor of the *index*-th event of the run; with *rehash*, recompute that
    event's hash and every later link and hash, so the run is consistent on its own."""
    rows = parse_events(members(bundle)[EVENTS])
    rows[index] = dataclasses.replace(rows[index], actor="000.00.99.H26")
    if rehash:
        prev = rows[index].prev_hash
        for i in range(index, len(rows)):
            rows[i] = dataclasses.replace(rows[i], prev_hash=prev)
            rows[i] = dataclasses.replace(rows[i], hash=recompute(rows[i]))
            prev = rows[i].hash
    text = "".join(event_line(r) + "\n" for r in rows).encode()
    return rezip(bundle, {EVENTS: text}, fix_manifest=True)


def forge_jws_payload(jws: str, **changes: object) -> str:
    """The JWS with its payload changed and the hub's signature kept."""
    header, payload, signature = jws.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"
