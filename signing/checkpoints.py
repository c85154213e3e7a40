"""Signed checkpoints of the audit chain: the hub's statement "at this time, my chain's event
``seq`` had hash ``head_hash``", signed with the hub's key as a compact JWS (the receipts'
format, ``signing.receipts``)::

    v           1
    kind        "checkpoint"
    hub         the hub's identity ([hub] id)
    seq         the chain head's sequence number
    head_hash   that event's hash (which covers every event before it)
    signed_at   hub time, UTC, ISO 8601

A chain that someone rewrote and re-hashed end to end is consistent on its own; it no longer
matches the hash the hub signed for it. An auditor needs only the hub's certificate to check a
checkpoint (:func:`verify_checkpoint`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509

from signing.receipts import ReceiptError, ReceiptSigner, receipt_time, signed_time, verify_jws

VERSION = 1
_HASH = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(ReceiptError):
    """Not a valid checkpoint of this hub; the message says why."""


@dataclass(frozen=True)
class Checkpoint:
    hub: str
    seq: int
    head_hash: str
    signed_at: dt.datetime


def sign_checkpoint(
    signer: ReceiptSigner, *, hub: str, seq: int, head_hash: str, at: dt.datetime
) -> str:
    return signer.sign_jws(
        {
            "v": VERSION,
            "kind": "checkpoint",
            "hub": hub,
            "seq": seq,
            "head_hash": head_hash,
            "signed_at": receipt_time(at),
        }
    )


def verify_checkpoint(jws: str, certificate: x509.Certificate) -> Checkpoint:
    try:
        _header, payload = verify_jws(jws, certificate)
    except ReceiptError as exc:
        raise CheckpointError(str(exc)) from exc
    if payload.get("kind") != "checkpoint" or payload.get("v") != VERSION:
        raise CheckpointError("signed by the hub, but not a checkpoint")
    seq, head_hash, hub = payload.get("seq"), payload.get("head_hash"), payload.get("hub")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise CheckpointError(f"seq {seq!r} is not a sequence number")
    if not isinstance(head_hash, str) or not _HASH.match(head_hash):
        raise CheckpointError(f"head_hash {head_hash!r} is not a SHA-256")
    if not isinstance(hub, str):
        raise CheckpointError("hub is missing")
    signed_at = signed_time(payload.get("signed_at"), "signed_at", CheckpointError)
    if not certificate.not_valid_before_utc <= signed_at <= certificate.not_valid_after_utc:
        raise CheckpointError("signed outside the hub certificate's validity")
    return Checkpoint(hub, seq, head_hash, signed_at)
