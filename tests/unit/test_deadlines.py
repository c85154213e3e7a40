"""The deadline rules (hub.deadlines): which document deliveries are overdue, and how they are
told; the [deadlines] and [alerts] configuration; how a terminal shows an overdue recipient."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

import pytest

from adapters.tables import trace_table
from hub.config import deadline_settings, load_settings
from hub.deadlines import ACK, DUE_DATE, DeliveryFacts, due_deadline, overdue
from hub.errors import ConfigError
from tests.unit.test_config import cert_pem, write_config

__all__ = ["cert_pem"]  # the fixture, shared with test_config

UTC = dt.UTC
WINDOWS = deadline_settings({}, {}).windows
RECEIVED = dt.datetime(2026, 11, 22, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội
SECOND = dt.timedelta(seconds=1)


def facts(**changes: object) -> DeliveryFacts:
    base = DeliveryFacts(
        delivery_id="d-1",
        recipient="000.00.31.H26",
        priority=0,
        received_at=RECEIVED,
        transport="delivered",
        business=None,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("priority", "hours", "name"),
    [
        (4, 2, "hỏa tốc hẹn giờ"),
        (3, 2, "hỏa tốc"),
        (2, 8, "thượng khẩn"),
        (1, 24, "khẩn"),
        (0, 72, "thường"),
    ],
)
def test_each_priority_has_its_acknowledgement_window(priority: int, hours: int, name: str) -> None:
    f = facts(priority=priority)
    deadline = RECEIVED + dt.timedelta(hours=hours)
    assert overdue(f, WINDOWS, deadline) == []  # acknowledged at the very end is in time
    (late,) = overdue(f, WINDOWS, deadline + SECOND)
    assert (late.what, late.deadline, late.late) == (ACK, deadline, SECOND)
    assert late.detail() == {
        "overdue": "ack",
        "recipient": "000.00.31.H26",
        "delivery_id": "d-1",
        "deadline": deadline.isoformat(),
        "late_seconds": 1,
        "priority": priority,
        "window_hours": hours,
        "state": "delivered",
    }
    assert f"within {hours} hours ({name})" in late.text()
    assert late.text().startswith("Overdue at 000.00.31.H26: not acknowledged")


def test_windows_come_from_the_configuration() -> None:
    windows = deadline_settings({"deadlines": {"ack_hours_thuong": 1.5}}, {}).windows
    assert overdue(facts(), windows, RECEIVED + dt.timedelta(minutes=90)) == []
    (late,) = overdue(facts(), windows, RECEIVED + dt.timedelta(minutes=91))
    assert "within 1.5 hours (thường), 1 minute late" in late.text()


@pytest.mark.parametrize("state", ["queued", "delivered", "retrying"])
def test_every_pending_delivery_can_be_late(state: str) -> None:
    assert [o.what for o in overdue(facts(transport=state), WINDOWS, RECEIVED + 4 * WEEK)] == [ACK]


WEEK = dt.timedelta(days=7)


@pytest.mark.parametrize(
    "changes",
    [
        {"transport": "done"},  # acknowledged as stored
        {"transport": "failed"},  # the sender got the failure with its delivery receipt
        {"transport": "dead"},  # the sender was told it did not get through
        {"transport": "expired"},
        {"business": "06"},  # finished without acknowledging transport
        {"business": "02"},
        {"business": "15"},
        {"ack_flagged": True},  # flagged once already
        {"relayed": True},  # a peer hub relays no acknowledgement
    ],
)
def test_not_overdue_for_acknowledgement(changes: dict[str, object]) -> None:
    assert overdue(facts(**changes), WINDOWS, RECEIVED + 4 * WEEK) == []


def test_due_date_is_the_end_of_that_day_in_vietnam_time() -> None:
    assert due_deadline("2026/11/30") == dt.datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert due_deadline("2026/12/31") == dt.datetime(2026, 12, 31, 17, 0, tzinfo=UTC)
    for nothing in ("", None, "2026/02/30", "30/11/2026"):
        assert due_deadline(nothing) is None


def test_a_due_date_missed_without_06() -> None:
    due_at = due_deadline("2026/11/30")
    assert due_at is not None
    f = facts(transport="done", business="03", due_date="2026/11/30", due_at=due_at)
    # 23:59:59 on the 30th in Hà Nội is still in time; midnight is not.
    assert overdue(f, WINDOWS, due_at - SECOND) == []
    (late,) = overdue(f, WINDOWS, due_at + dt.timedelta(hours=2))
    assert (late.what, late.deadline) == (DUE_DATE, due_at)
    assert late.detail()["business"] == "03" and late.detail()["due_date"] == "2026/11/30"
    assert late.text() == (
        "Overdue at 000.00.31.H26: DueDate 2026/11/30 passed without 06 (last status 03), "
        "2 hours late."
    )
    # Relayed recipients report statuses too: the DueDate holds for them.
    assert [o.what for o in overdue(dataclasses.replace(f, relayed=True), WINDOWS, due_at)] == [
        DUE_DATE
    ]


@pytest.mark.parametrize("changes", [{"business": "06"}, {"business": "02"}, {"due_flagged": True}])
def test_not_overdue_for_the_due_date(changes: dict[str, object]) -> None:
    due_at = due_deadline("2026/11/30")
    f = facts(transport="done", due_date="2026/11/30", due_at=due_at, **changes)
    assert overdue(f, WINDOWS, RECEIVED + 10 * WEEK) == []


def test_both_deadlines_can_be_missed_at_once() -> None:
    f = facts(due_date="2026/11/23", due_at=due_deadline("2026/11/23"))
    assert [o.what for o in overdue(f, WINDOWS, RECEIVED + WEEK)] == [ACK, DUE_DATE]


def test_check_interval_and_alert_settings(tmp_path: Path, cert_pem: bytes) -> None:
    hook = tmp_path / "config" / "canh-bao.sh"
    config = write_config(
        tmp_path,
        cert_pem,
        hub_extra="[deadlines]\ncheck_seconds = 60\n[alerts]\n"
        'webhook = "https://canhbao.example.gov.vn/hook?token=x"\n'
        'command = ["canh-bao.sh", "--to", "vanhanh"]\n',
    )
    with pytest.raises(ConfigError, match=r"alerts\.command.*not found on PATH"):
        load_settings(config, env={"PATH": ""})
    hook.write_text("#!/bin/sh\ncat >/dev/null\n")
    hook.chmod(0o755)
    env = {"LIENTHONG_ALERTS_COMMAND": "./canh-bao.sh", "LIENTHONG_DEADLINES_CHECK_SECONDS": "0"}
    settings = load_settings(config, env=env)
    assert settings.deadlines.check_seconds == 0
    assert settings.alerts.command == (str(tmp_path / "config" / "canh-bao.sh"),)
    assert settings.alerts.webhook.startswith("https://") and settings.alerts.timeout_seconds == 10
    assert "token" not in repr(settings.alerts)  # a webhook's token is never shown
    defaults = load_settings(write_config(tmp_path, cert_pem), env={})
    assert not defaults.alerts.enabled and defaults.deadlines.check_seconds == 300


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[alerts]\nwebhook = "ftp://x?token=secret"\n', r"alerts\.webhook.*http"),
        ('[alerts]\ncommand = "echo"\n', r"alerts\.command.*list of strings"),
        ('[alerts]\ncommand = ["./missing.sh"]\n', r"alerts\.command.*not an executable"),
        ('[alerts]\nemail = "a@b"\n', r"alerts\.email.*not an alert setting"),
        ("[alerts]\ntimeout_seconds = 0\n", r"alerts\.timeout_seconds.*at least 1"),
        ("[deadlines]\ncheck_seconds = -5\n", r"deadlines\.check_seconds.*at least 0"),
    ],
)
def test_bad_alert_settings_stop_start_up(
    tmp_path: Path, cert_pem: bytes, extra: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings(
            write_config(tmp_path, cert_pem, hub_extra=extra), env={"PATH": os.environ["PATH"]}
        )
    assert "secret" not in str(raised.value)


def test_the_trace_table_shows_an_overdue_recipient() -> None:
    trace = {
        "document": {
            "document_id": "doc-1",
            "code": "12/UBND-VP",
            "subject": "V/v báo cáo",
            "sender": "000.00.00.H26",
            "received_at": RECEIVED.isoformat(),
        },
        "recipients": [
            {
                "recipient": "000.00.31.H26",
                "transport": "done",
                "business": "03",
                "overdue": ["ack", "due_date"],
            }
        ],
        "events": [
            {
                "seq": 9,
                "at": (RECEIVED + 4 * WEEK).isoformat(),
                "kind": "overdue",
                "actor": "hub",
                "detail": {
                    "overdue": "ack",
                    "recipient": "000.00.31.H26",
                    "priority": 2,
                    "window_hours": 8.0,
                    "deadline": (RECEIVED + dt.timedelta(hours=8)).isoformat(),
                    "late_seconds": 5400,
                    "alert": True,
                },
            }
        ],
    }
    text = trace_table(trace)
    assert "OVERDUE: not acknowledged in time · OVERDUE: DueDate missed" in text
    assert "000.00.31.H26: not acknowledged within 8.0 h (priority 2)" in text
    assert "deadline 2026-11-22 18:00:00, 1.5 h late" in text
