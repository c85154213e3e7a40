"""The web console's pure parts: settings, the message catalogues, the sign-in throttle, HTML
escaping and the overdue rule it shares with the monthly report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from hub.config import ConsoleSettings, load_settings
from hub.console.html import render, tag
from hub.console.i18n import CATALOGUES, messages, vietnam_time
from hub.console.sessions import LoginThrottle
from hub.errors import ConfigError
from hub.reports import ack_verdict
from tests.unit.test_config import cert_pem, write_config  # noqa: F401 - fixture

T0 = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


def test_both_languages_say_everything() -> None:
    assert CATALOGUES["vi"].keys() == CATALOGUES["en"].keys()
    assert messages("en")("stats.title", month="2026-11") == "Per-agency statistics, 2026-11"
    assert messages("xx")("login.submit") == "Đăng nhập"  # unknown language: Vietnamese


def test_times_are_shown_in_vietnam_time_with_the_zone_named() -> None:
    assert vietnam_time(T0) == "2026-11-30 08:00:00 UTC+7"


def test_console_settings_defaults_overrides_and_refusals(
    tmp_path: Path,
    cert_pem: bytes,  # noqa: F811
) -> None:
    assert load_settings(write_config(tmp_path, cert_pem), env={}).console == ConsoleSettings()
    config = write_config(tmp_path, cert_pem, hub_extra="[console]\nsession_seconds = 600\n")
    settings = load_settings(config, env={"LIENTHONG_CONSOLE_LOGIN_ATTEMPTS": "3"})
    assert settings.console == ConsoleSettings(session_seconds=600, login_attempts=3)
    for extra, key in (
        ("[console]\nsession_seconds = 5\n", "console.session_seconds"),
        ("[console]\nlogin_attempts = 0\n", "console.login_attempts"),
        ("[console]\ntheme = 'dark'\n", "console.theme"),
    ):
        with pytest.raises(ConfigError) as refused:
            load_settings(write_config(tmp_path, cert_pem, hub_extra=extra), env={})
        assert refused.value.key == key


def test_the_throttle_refuses_after_the_allowed_failures_until_the_window_passes() -> None:
    throttle = LoginThrottle(attempts=2, window=dt.timedelta(seconds=60))
    throttle.failed("10.0.0.1", T0)
    assert throttle.allowed("10.0.0.1", T0)
    throttle.failed("10.0.0.1", T0 + dt.timedelta(seconds=10))
    assert not throttle.allowed("10.0.0.1", T0 + dt.timedelta(seconds=20))
    assert throttle.retry_after("10.0.0.1", T0 + dt.timedelta(seconds=20)) == 41
    assert throttle.allowed("10.0.0.2", T0 + dt.timedelta(seconds=20))  # per address
    assert throttle.allowed("10.0.0.1", T0 + dt.timedelta(seconds=61))
    throttle.succeeded("10.0.0.1")
    assert throttle.retry_after("10.0.0.1", T0) == 0


def test_the_throttle_remembers_a_bounded_number_of_addresses() -> None:
    throttle = LoginThrottle(attempts=1, window=dt.timedelta(hours=1), clients=2)
    for client in ("a", "b", "c"):
        throttle.failed(client, T0)
    assert throttle.allowed("a", T0) and not throttle.allowed("c", T0)


def test_every_value_is_escaped() -> None:
    hostile = '"><script>alert(1)</script>'
    assert "<script>" not in render("<p title=$v>$v</p>", v=hostile)
    assert tag("a", hostile, href=hostile) == (
        '<a href="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;">'
        "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;</a>"
    )
    assert tag("input", name="q", required=True, hidden=False) == '<input name="q" required>'


def test_overdue_is_judged_as_the_report_judges_it() -> None:
    deadline = T0 + dt.timedelta(hours=2)
    late = deadline + dt.timedelta(minutes=1)
    assert ack_verdict("done", T0, deadline, late) == "in_time"
    assert ack_verdict("done", late, deadline, late) == "overdue"
    assert ack_verdict("delivered", None, deadline, late) == "overdue"
    assert ack_verdict("queued", None, deadline, T0) == "pending"
