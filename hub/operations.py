"""What an operator does with deliveries: find them, and send them again.

A resend puts a delivery back to ``queued`` under the **same delivery id** (receivers
de-duplicate on it), with its attempts and last error cleared and its age restarted
(``created_at``: the retry policy's ``max_age`` and expiry count from the new queueing; the
first one stays in the trace). A push recipient's delivery is due at once; a pull recipient
sees it in its inbox again. Each resend appends a ``resent`` event naming the operator.

Used by ``lienthong deliveries`` (on the hub's database, while the hub runs or not: a running
hub's dispatcher sees the change at its next poll) and by ``POST /v1/deliveries/{id}/resend``
(admin accounts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from hub.context import HubContext
from hub.errors import NotFound
from hub.states import UNDELIVERED, Transport, on_resend
from tracking.models import Delivery, utcnow
from tracking.store import append_event

MAX_LIST = 1000


def describe(delivery: Delivery) -> dict[str, Any]:
    """A delivery as operators see it (``lienthong deliveries list``, the resend answer)."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "delivery_id": delivery.id,
        "kind": delivery.kind,
        "document_id": delivery.document_id,
        "recipient": delivery.recipient_code,
        "priority": delivery.priority,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "next_attempt_at": when(delivery.next_attempt_at),
        "created_at": when(delivery.created_at),
    }


async def list_deliveries(
    ctx: HubContext, *, agency: str | None = None, state: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Deliveries, newest first, of one recipient and/or in one transport state."""
    if state is not None:
        Transport(state)  # ValueError names a state that does not exist
    query = select(Delivery)
    if agency is not None:
        query = query.where(Delivery.recipient_code == agency)
    if state is not None:
        query = query.where(Delivery.state == state)
    query = query.order_by(Delivery.created_at.desc(), Delivery.id).limit(min(limit, MAX_LIST))
    async with ctx.store.read() as session:
        return [describe(d) for d in (await session.execute(query)).scalars()]


async def _resend(
    ctx: HubContext, session: Any, delivery: Delivery, operator: str, via: str
) -> dict[str, Any]:
    before, attempts, error = delivery.state, delivery.attempts, delivery.last_error
    delivery.state = on_resend(Transport(before))  # Conflict for a stored (done) delivery
    now = utcnow()
    delivery.attempts = 0
    delivery.last_error = None
    delivery.created_at = now
    delivery.next_attempt_at = ctx.first_attempt_at(delivery.recipient_code, now)
    delivery.lease_until = None
    delivery.delivered_at = None
    delivery.acked_at = None
    delivery.ack_reason = None
    detail: dict[str, Any] = {
        "recipient": delivery.recipient_code,
        "kind": delivery.kind,
        "previous_state": before,
        "previous_attempts": attempts,
        "via": via,
    }
    if error:
        detail["last_error"] = error
    await append_event(
        session,
        "resent",
        operator,
        document_id=delivery.document_id,
        delivery_id=delivery.id,
        detail=detail,
    )
    return describe(delivery)


def _announce(ctx: HubContext, resent: list[dict[str, Any]]) -> None:
    """Wake long polls and the dispatcher of *this* process (another one polls)."""
    for item in resent:
        ctx.notifier.notify(item["recipient"])
    if any(item["next_attempt_at"] for item in resent):
        ctx.outbox.ring()


async def resend(
    ctx: HubContext, delivery_id: str, operator: str, *, via: str = "cli"
) -> dict[str, Any]:
    """Queue one delivery again (any state but ``done``)."""
    async with ctx.store.write() as session:
        delivery = await session.get(Delivery, delivery_id)
        if delivery is None:
            raise NotFound(f"No delivery {delivery_id} on this hub.")
        answer = await _resend(ctx, session, delivery, operator, via)
    _announce(ctx, [answer])
    return answer


async def resend_undelivered(
    ctx: HubContext, agency: str, operator: str, *, via: str = "cli"
) -> list[dict[str, Any]]:
    """Queue again every ``dead``, ``failed`` or ``expired`` delivery to *agency*."""
    async with ctx.store.write() as session:
        rows = (
            (
                await session.execute(
                    select(Delivery)
                    .where(
                        Delivery.recipient_code == agency,
                        Delivery.state.in_([s.value for s in UNDELIVERED]),
                    )
                    .order_by(Delivery.priority.desc(), Delivery.created_at, Delivery.id)
                )
            )
            .scalars()
            .all()
        )
        answers = [await _resend(ctx, session, d, operator, via) for d in rows]
    _announce(ctx, answers)
    return answers
