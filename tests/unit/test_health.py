"""The judgements behind /healthz (hub.health): pure, so every failure is shown on its own."""

from __future__ import annotations

import datetime as dt

from hub.health import JobState, judge_crls, judge_scheduler
from signing.trust import CrlStatus

NOW = dt.datetime(2026, 11, 22, 3, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def job(**kw: object) -> JobState:
    base: dict[str, object] = {
        "job_id": "crl-refresh",
        "interval": HOUR,
        "next_run_at": NOW + HOUR,
        "running_since": None,
    }
    return JobState(**{**base, **kw})  # type: ignore[arg-type]


def test_a_running_scheduler_with_jobs_on_time_passes() -> None:
    check = judge_scheduler(True, [job(), job(job_id="expire-deliveries", running_since=NOW)], NOW)
    assert check.ok, check
    assert check.facts["jobs"] == ["crl-refresh", "expire-deliveries"]


def test_a_stopped_scheduler_fails() -> None:
    assert not judge_scheduler(False, [job()], NOW).ok


def test_a_job_running_longer_than_its_interval_is_stuck() -> None:
    check = judge_scheduler(True, [job(running_since=NOW - HOUR - dt.timedelta(seconds=1))], NOW)
    assert not check.ok
    assert "crl-refresh running since" in check.detail
    assert judge_scheduler(True, [job(running_since=NOW - HOUR)], NOW).ok


def test_a_job_not_started_a_minute_after_it_was_due_is_stuck() -> None:
    late = job(next_run_at=NOW - dt.timedelta(seconds=61))
    assert not judge_scheduler(True, [late], NOW).ok
    assert judge_scheduler(True, [job(next_run_at=NOW - dt.timedelta(seconds=59))], NOW).ok


def crl(source: str, fresh: bool) -> CrlStatus:
    return CrlStatus(source, "CN=CA", True, fresh, NOW, None, NOW - HOUR, 0, None)


def test_crls_are_shown_without_credentials_queries_or_folders() -> None:
    check = judge_crls(
        [
            crl("https://user:pw@ca.example.vn/crl/ca.crl?key=abc", True),
            crl("/etc/lienthong/secret-folder/ca2.crl", False),
        ],
        dt.timedelta(hours=24),
    )
    assert not check.ok
    shown = [c["source"] for c in check.facts["crls"]]
    assert shown == ["https://ca.example.vn/crl/ca.crl", "ca2.crl"]
    assert "ca2.crl" in check.detail and "pw" not in str(check.as_dict())
    assert "secret-folder" not in str(check.as_dict())


def test_no_crl_configured_passes() -> None:
    assert judge_crls([], dt.timedelta(hours=24)).ok
