"""Verifying the audit chain: recompute every event's hash and every link, and name the first
event that was altered, removed or inserted.

The walk is pure (rows in, a report out), so ``lienthong audit verify`` and an offline evidence
check judge the same way; :func:`verify_store` only feeds it from the database. Rows are read in
``seq`` order in one pass, keeping only the last two hashes: a chain of millions of events needs
no more memory than one of ten.

How each kind of tampering shows:

* **altered**: an event's content no longer gives its stored hash;
* **removed**: an event links to a hash that is not its predecessor's, and ``seq`` jumps over the
  missing numbers (or, renumbered, the link skips one: it points two events back);
* **inserted**: the event *after* a forged one links to the hash of the forged one's predecessor,
  so the forged event sits between two events that were linked directly.

A chain rewritten and re-hashed from some event on is consistent on its own; the hub's signed
checkpoints of the chain head catch that (**rewritten**: the hash at a checkpoint's ``seq`` is not
the one the hub signed), and events cut off the end (**removed**: the chain stops before a
checkpoint's ``seq``). Checking the checkpoints' signatures is the caller's part: this module is
given the ``seq → hash`` the hub signed.

Purged documents (``hub.retention``) leave **tombstones**: events whose content is gone and whose
stored hash is taken as given; the next event's link (and the checkpoints) still vouch for it. So
an altered tombstone breaks a link or disagrees with a checkpoint, and a removed one leaves a gap,
as for any event. A whole-chain walk also checks that every tombstone belongs to a purge the chain
records (a ``purged`` event naming the document and the number of its events blanked): blanking
an event that no purge covers, or more events than the purge did, is reported as **altered**.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from tracking import chain
from tracking.models import TraceEvent
from tracking.store import Store


@dataclass(frozen=True)
class EventRow:
    seq: int
    at: datetime
    kind: str
    actor: str
    document_id: str | None
    delivery_id: str | None
    detail: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Tampering:
    what: str  # "altered" | "removed" | "inserted" | "rewritten" | "checkpoint"
    seq: int  # the first event concerned
    message: str


@dataclass(frozen=True)
class ChainReport:
    events: int
    head_seq: int
    head_hash: str
    problem: Tampering | None
    purged: int = 0  # tombstones among the events verified (purged documents' events)

    @property
    def intact(self) -> bool:
        return self.problem is None


def recompute(row: EventRow) -> str:
    return chain.event_hash(
        row.prev_hash,
        seq=row.seq,
        at=row.at,
        kind=row.kind,
        actor=row.actor,
        document_id=row.document_id,
        delivery_id=row.delivery_id,
        detail=row.detail,
    )


def _link_problem(
    row: EventRow, before: EventRow | None, earlier_hash: str, first_seq: int = 1
) -> Tampering:
    """*row* does not link to *before*: say what happened between them."""
    expected_seq = before.seq + 1 if before else first_seq
    if before is not None and row.prev_hash == earlier_hash:
        return Tampering(
            "inserted",
            before.seq,
            f"event {before.seq} ({before.kind}, {before.at.isoformat()}) was inserted: the "
            f"event after it links to the event before it",
        )
    if before is not None and before.kind == chain.TOMBSTONE and row.seq == expected_seq:
        return Tampering(
            "altered",
            before.seq,
            f"the purged event {before.seq} was altered (or the event after it removed): event "
            f"{row.seq} links to another hash",
        )
    if row.kind == chain.TOMBSTONE and row.seq == expected_seq:
        return Tampering(
            "altered",
            row.seq,
            f"the purged event {row.seq} was altered: it does not link to event {expected_seq - 1}",
        )
    if row.seq > expected_seq:
        missing = (
            f"event {expected_seq}"
            if row.seq == expected_seq + 1
            else f"events {expected_seq}–{row.seq - 1}"
        )
        return Tampering("removed", expected_seq, f"{missing} removed: event {row.seq} links past")
    return Tampering(
        "removed",
        row.seq,
        f"event {row.seq} does not link to event {expected_seq - 1}: an event before it was "
        "removed or replaced",
    )


class ChainWalk:
    """Walk the chain from genesis, one event at a time (rows may come from a stream); stops
    judging at the first problem. *checkpoints* maps a ``seq`` to the hash the hub signed for
    it.

    :meth:`from_event` walks a run that starts inside the chain instead (an evidence bundle's
    events): the first event's link is taken as given, because a signed checkpoint later in the
    run covers it (each hash covers the previous one), so the run needs no events before it."""

    @classmethod
    def from_event(cls, first: EventRow, checkpoints: Mapping[int, str]) -> ChainWalk:
        walk = cls(checkpoints)
        walk._head_hash = first.prev_hash
        walk._first_seq = first.seq
        walk._last_good_checkpoint = first.seq - 1
        # A run may hold tombstones of documents purged after it whose purge event lies beyond
        # it; the checkpoint vouches for their hashes.
        walk._whole_chain = False
        return walk

    def __init__(self, checkpoints: Mapping[int, str] | None = None) -> None:
        self._first_seq = 1
        self.count = 0
        self.problem: Tampering | None = None
        self._checkpoints = dict(checkpoints or {})
        self._last_good_checkpoint = 0
        self._before: EventRow | None = None
        self._earlier_hash = ""  # the hash of the event before ``_before``
        self._head_hash = chain.GENESIS
        self._whole_chain = True
        self.purged = 0
        # document id (None: an event of no document) → (first tombstone's seq, tombstones)
        self._tombstones: dict[str | None, tuple[int, int]] = {}
        self._purges: dict[str, int] = {}  # document id → events its purge event says it blanked

    def feed(self, row: EventRow) -> bool:
        """Judge the next event; False once a problem is found (feed no more)."""
        if self.problem is not None:
            return False
        if row.prev_hash != self._head_hash or (
            self._before is None and row.seq != self._first_seq
        ):
            self.problem = _link_problem(row, self._before, self._earlier_hash, self._first_seq)
            return False
        if row.kind == chain.TOMBSTONE:
            self.purged += 1
            first, count = self._tombstones.get(row.document_id, (row.seq, 0))
            self._tombstones[row.document_id] = (first, count + 1)
        elif recompute(row) != row.hash:
            self.problem = Tampering(
                "altered",
                row.seq,
                f"event {row.seq} ({row.kind}, {row.at.isoformat()}) was altered: its content "
                "no longer gives its hash",
            )
            return False
        signed = self._checkpoints.get(row.seq)
        if signed is not None and signed != row.hash:
            first = self._last_good_checkpoint + 1
            self.problem = Tampering(
                "rewritten",
                first,
                f"event {row.seq} is not the one the hub signed in its checkpoint: an event "
                f"from {first} to {row.seq} was altered, removed or inserted and the hashes "
                "after it recomputed",
            )
            return False
        if signed is not None:
            self._last_good_checkpoint = row.seq
        if row.kind == chain.PURGED and row.document_id is not None:
            self._purges[row.document_id] = _blanked(row)
        self.count += 1
        self._earlier_hash, self._head_hash, self._before = self._head_hash, row.hash, row
        return True

    def report(self) -> ChainReport:
        """The events verified up to the head (or up to the first problem)."""
        head_seq = self._before.seq if self._before else 0
        if self.problem is None and self._checkpoints and max(self._checkpoints) > head_seq:
            self.problem = Tampering(
                "removed",
                head_seq + 1,
                f"the chain ends at event {head_seq}, but the hub signed a checkpoint of event "
                f"{max(self._checkpoints)}: events from {head_seq + 1} on were removed",
            )
        if self.problem is None and self._whole_chain:
            self.problem = self._unrecorded_tombstone()
        return ChainReport(self.count, head_seq, self._head_hash, self.problem, self.purged)

    def _unrecorded_tombstone(self) -> Tampering | None:
        """The first tombstone no recorded purge accounts for (None: every one is)."""
        unexplained = [
            (first, document_id, count)
            for document_id, (first, count) in self._tombstones.items()
            if document_id is None or self._purges.get(document_id) != count
        ]
        if not unexplained:
            return None
        first, document_id, count = min(unexplained, key=lambda u: u[0])
        recorded = None if document_id is None else self._purges.get(document_id)
        why = (
            "no purge of its document is recorded in the chain"
            if recorded is None
            else f"the purge of document {document_id} blanked {recorded} events, not {count}"
        )
        return Tampering("altered", first, f"event {first} was blanked as if purged, but {why}")


def _blanked(row: EventRow) -> int:
    """How many events a ``purged`` event says the purge turned into tombstones."""
    try:
        detail = json.loads(row.detail)
        events = detail["events"] if isinstance(detail, dict) else -1
    except (json.JSONDecodeError, KeyError):
        return -1
    return events if isinstance(events, int) else -1


def verify(rows: Iterable[EventRow], checkpoints: Mapping[int, str] | None = None) -> ChainReport:
    walk = ChainWalk(checkpoints)
    for row in rows:
        if not walk.feed(row):
            break
    return walk.report()


async def verify_store(
    store: Store,
    checkpoints: Mapping[int, str] | None = None,
    progress: Callable[[int], None] | None = None,
    batch: int = 5000,
) -> ChainReport:
    """Verify the whole chain in *store*, streaming it in ``seq`` order, against the verified
    *checkpoints*; *progress* is called with the number of events read after every *batch*."""
    walk = ChainWalk(checkpoints)
    async with store.read() as session:
        result = await session.stream(
            select(TraceEvent).order_by(TraceEvent.seq).execution_options(yield_per=batch)
        )
        async for event in result.scalars():
            row = EventRow(
                event.seq,
                event.at,
                event.kind,
                event.actor,
                event.document_id,
                event.delivery_id,
                event.detail,
                event.prev_hash,
                event.hash,
            )
            if not walk.feed(row):
                break
            if progress is not None and walk.count % batch == 0:
                progress(walk.count)
        await result.close()
    return walk.report()
