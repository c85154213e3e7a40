"""The two state machines of a delivery (DESIGN §4). Pure: a state and an event in, a new state
out or a :class:`Conflict` that says why not.

Transport: ``queued → delivered → done | failed``; a delivery the hub pushes goes through
``retrying`` on failed attempts and ends ``dead`` when it gives up; one left unacknowledged too
long is ``expired``; an operator's resend puts ``dead``, ``failed`` and ``expired`` back to
``queued`` (same delivery id). Business (edXML status codes): ``— → 01 → 02 | 03 → 04 → 05* → 06``
and the recall handshake ``13 → 15 | 16``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hub.edxml.model import StatusCode
from hub.errors import Conflict


class Transport(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DONE = "done"
    FAILED = "failed"
    RETRYING = "retrying"
    EXPIRED = "expired"
    DEAD = "dead"


PENDING = (Transport.QUEUED, Transport.DELIVERED, Transport.RETRYING)
# What the dispatcher may (still) push: an attempt's outcome only applies to these.
PUSHABLE = (Transport.QUEUED, Transport.RETRYING)
# Where a delivery ends when nobody took it: what an operator's bulk resend looks for.
UNDELIVERED = (Transport.DEAD, Transport.FAILED, Transport.EXPIRED)


class AckResult(StrEnum):
    DONE = "done"
    FAIL = "fail"


def on_download(state: Transport) -> Transport:
    """The recipient downloaded the package: a queued delivery is now delivered."""
    return Transport.DELIVERED if state in (Transport.QUEUED, Transport.RETRYING) else state


def on_ack(state: Transport, result: AckResult) -> Transport:
    """The recipient acknowledged transport. Repeating the same acknowledgement is harmless."""
    target = Transport.DONE if result is AckResult.DONE else Transport.FAILED
    if state in PENDING:
        return target
    if state == target:
        return state
    raise Conflict(
        f"The delivery is already {state.value}; it cannot be acknowledged as {result.value}.",
        code="state.conflict",
    )


class PushResult(StrEnum):
    """What one push attempt came to, once the retry policy has judged a failure."""

    DELIVERED = "delivered"  # the receiver answered 2xx
    RETRY = "retry"  # failed; another attempt is scheduled
    GIVE_UP = "give_up"  # failed for good (permanent, or a limit reached)


def on_push(state: Transport, result: PushResult) -> Transport:
    """After a push attempt. An outcome that arrives when the delivery is no longer pushable
    (acknowledged, downloaded, expired or resent meanwhile) changes nothing: it is stale."""
    if state not in PUSHABLE:
        return state
    return {
        PushResult.DELIVERED: Transport.DELIVERED,
        PushResult.RETRY: Transport.RETRYING,
        PushResult.GIVE_UP: Transport.DEAD,
    }[result]


def on_expire(state: Transport) -> Transport:
    """The delivery's time to be acknowledged ran out: pending ones expire, others stay."""
    return Transport.EXPIRED if state in PENDING else state


def on_resend(state: Transport) -> Transport:
    """An operator sends the delivery again: back to ``queued``, whatever it went through,
    except a delivery the recipient acknowledged as stored (sending it again would make a
    second copy at the recipient, not repair anything)."""
    if state == Transport.DONE:
        raise Conflict(
            "The recipient acknowledged this delivery as stored (done); there is nothing to "
            "resend.",
            code="state.conflict",
        )
    return Transport.QUEUED


# Forward order of the ordinary flow. Steps may be skipped (03 and 05 often come back to back,
# 01 is not always sent, 06 neither) but never taken backwards.
_RANK = {
    StatusCode.ARRIVED: 1,
    StatusCode.ACCEPTED: 2,
    StatusCode.ASSIGNED: 3,
    StatusCode.IN_PROGRESS: 4,
    StatusCode.FINISHED: 5,
}
RECALLED = StatusCode.RECALL_AGREED  # business state of a delivery whose recall was agreed
# A recipient is finished with a document once it reported 06, rejected it (02), or agreed to
# its recall (15): no further status is expected from it.
CLOSED = (StatusCode.FINISHED.value, StatusCode.REJECTED.value, RECALLED.value)


@dataclass(frozen=True)
class Business:
    """Business state of one document at one recipient."""

    code: StatusCode | None = None  # last status of the ordinary flow, or 15 once recalled
    recall_pending: bool = False


def _refuse(message: str, *, duplicate: bool = False) -> Conflict:
    return Conflict(message, code="status.duplicate" if duplicate else "status.transition")


def apply_status(current: Business, code: StatusCode) -> Business:
    """The business state after *code*, or a :class:`Conflict` naming the rule it breaks."""
    state = current.code
    if state is RECALLED:
        raise _refuse("The document was recalled at this recipient; no further status applies.")
    if code is StatusCode.RECALL_REQUEST:
        if current.recall_pending:
            raise _refuse("A recall request is already pending for this recipient.", duplicate=True)
        if state is StatusCode.REJECTED:
            raise _refuse("The recipient rejected the document (02); there is nothing to recall.")
        return Business(state, recall_pending=True)
    if code in (StatusCode.RECALL_AGREED, StatusCode.RECALL_REFUSED):
        if not current.recall_pending:
            raise _refuse(
                f"Status {code.value} answers a recall request (13), and none is pending."
            )
        return Business(RECALLED if code is StatusCode.RECALL_AGREED else state, False)
    if state is StatusCode.REJECTED:
        if code is StatusCode.REJECTED:
            raise _refuse("The document was already rejected (02).", duplicate=True)
        raise _refuse("The document was rejected (02); no further status applies.")
    if state is StatusCode.FINISHED and code is StatusCode.FINISHED:
        raise _refuse("The document was already reported finished (06).", duplicate=True)
    if state is StatusCode.FINISHED:
        raise _refuse("The document was reported finished (06); no further status applies.")
    if code is StatusCode.REJECTED:
        if state not in (None, StatusCode.ARRIVED):
            assert state is not None
            raise _refuse(
                f"A document already at {state.value} ({state.meaning}) can no longer be "
                "rejected; rejection (02) follows arrival (01)."
            )
        return Business(code, current.recall_pending)
    if state is not None:
        if code == state and code is not StatusCode.IN_PROGRESS:
            raise _refuse(f"Status {code.value} was already reported.", duplicate=True)
        if _RANK[code] < _RANK[state]:
            raise _refuse(
                f"Status {code.value} ({code.meaning}) cannot follow {state.value} "
                f"({state.meaning}); statuses only move forward: 01, 03, 04, 05, 06."
            )
    return Business(code, current.recall_pending)
