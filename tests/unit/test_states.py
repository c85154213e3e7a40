"""The transport and business state machines (pure)."""

from __future__ import annotations

import pytest

from hub.edxml.model import StatusCode as S
from hub.errors import Conflict
from hub.states import (
    PENDING,
    AckResult,
    Business,
    PushResult,
    Transport,
    apply_status,
    on_ack,
    on_download,
    on_expire,
    on_push,
    on_resend,
)


def run(*codes: S) -> Business:
    state = Business()
    for code in codes:
        state = apply_status(state, code)
    return state


@pytest.mark.parametrize(
    "codes",
    [
        (S.ARRIVED, S.ACCEPTED, S.ASSIGNED, S.IN_PROGRESS, S.FINISHED),
        (S.ARRIVED, S.REJECTED),
        (S.REJECTED,),  # 01 is often automatic, and sometimes not sent at all
        (S.ACCEPTED, S.IN_PROGRESS),  # 03 and 05 back to back
        (S.ARRIVED, S.IN_PROGRESS, S.IN_PROGRESS, S.IN_PROGRESS),  # 05 may repeat
        (S.ACCEPTED, S.RECALL_REQUEST, S.RECALL_REFUSED, S.FINISHED),
    ],
)
def test_allowed_flows(codes: tuple[S, ...]) -> None:
    run(*codes)


@pytest.mark.parametrize(
    ("codes", "refused", "code", "says"),
    [
        ((S.ACCEPTED,), S.ARRIVED, "status.transition", "cannot follow 03"),
        ((S.ACCEPTED,), S.REJECTED, "status.transition", "can no longer be rejected"),
        ((S.ARRIVED,), S.ARRIVED, "status.duplicate", "already reported"),
        ((S.FINISHED,), S.IN_PROGRESS, "status.transition", "finished"),
        ((S.FINISHED,), S.FINISHED, "status.duplicate", "already"),
        ((S.REJECTED,), S.ACCEPTED, "status.transition", "rejected"),
        ((S.REJECTED,), S.REJECTED, "status.duplicate", "already rejected"),
        ((), S.RECALL_AGREED, "status.transition", "none is pending"),
        ((S.RECALL_REQUEST,), S.RECALL_REQUEST, "status.duplicate", "already pending"),
        ((S.REJECTED,), S.RECALL_REQUEST, "status.transition", "nothing to recall"),
        ((S.RECALL_REQUEST, S.RECALL_AGREED), S.ACCEPTED, "status.transition", "recalled"),
    ],
)
def test_refused_transitions_name_the_rule(
    codes: tuple[S, ...], refused: S, code: str, says: str
) -> None:
    with pytest.raises(Conflict) as caught:
        apply_status(run(*codes), refused)
    assert caught.value.code == code
    assert says in caught.value.detail


def test_recall_agreed_is_final_and_recorded_as_15() -> None:
    state = run(S.ARRIVED, S.RECALL_REQUEST)
    assert state.recall_pending and state.code is S.ARRIVED
    state = apply_status(state, S.RECALL_AGREED)
    assert state == Business(S.RECALL_AGREED, recall_pending=False)


def test_recall_refused_keeps_the_business_state() -> None:
    assert run(S.ACCEPTED, S.RECALL_REQUEST, S.RECALL_REFUSED) == Business(S.ACCEPTED, False)


def test_transport_download_then_ack() -> None:
    assert on_download(Transport.QUEUED) is Transport.DELIVERED
    assert on_download(Transport.DONE) is Transport.DONE  # re-downloading changes nothing
    assert on_ack(Transport.DELIVERED, AckResult.DONE) is Transport.DONE
    assert on_ack(Transport.QUEUED, AckResult.FAIL) is Transport.FAILED


def test_transport_ack_is_idempotent_but_not_contradictory() -> None:
    assert on_ack(Transport.DONE, AckResult.DONE) is Transport.DONE
    with pytest.raises(Conflict) as caught:
        on_ack(Transport.DONE, AckResult.FAIL)
    assert caught.value.code == "state.conflict"


# --- transport: push outcomes, expiry, resend --------------------------------------------


@pytest.mark.parametrize(
    ("before", "result", "after"),
    [
        (Transport.QUEUED, PushResult.DELIVERED, Transport.DELIVERED),
        (Transport.QUEUED, PushResult.RETRY, Transport.RETRYING),
        (Transport.RETRYING, PushResult.RETRY, Transport.RETRYING),
        (Transport.RETRYING, PushResult.DELIVERED, Transport.DELIVERED),
        (Transport.RETRYING, PushResult.GIVE_UP, Transport.DEAD),
        (Transport.QUEUED, PushResult.GIVE_UP, Transport.DEAD),
    ],
)
def test_push_outcomes(before: Transport, result: PushResult, after: Transport) -> None:
    assert on_push(before, result) == after


@pytest.mark.parametrize(
    "moved_on",
    [Transport.DELIVERED, Transport.DONE, Transport.FAILED, Transport.EXPIRED, Transport.DEAD],
)
@pytest.mark.parametrize("result", list(PushResult))
def test_a_stale_push_outcome_changes_nothing(moved_on: Transport, result: PushResult) -> None:
    assert on_push(moved_on, result) == moved_on


def test_only_pending_deliveries_expire() -> None:
    for state in Transport:
        expected = Transport.EXPIRED if state in PENDING else state
        assert on_expire(state) == expected


@pytest.mark.parametrize("state", [s for s in Transport if s != Transport.DONE])
def test_resend_queues_again(state: Transport) -> None:
    assert on_resend(state) == Transport.QUEUED


def test_a_stored_delivery_is_not_resent() -> None:
    with pytest.raises(Conflict) as caught:
        on_resend(Transport.DONE)
    assert caught.value.code == "state.conflict"


def test_a_resent_delivery_can_be_acknowledged_again() -> None:
    for ended in (Transport.FAILED, Transport.DEAD, Transport.EXPIRED):
        assert on_ack(on_resend(ended), AckResult.DONE) == Transport.DONE
