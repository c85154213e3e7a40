"""Two real hubs federated on loopback: a commune of Hà Nội writes to a ministry through the
national hub, the ministry reports 01, 03 and 06, and the commune sees all three.

Two ``lienthong serve`` processes, each with its own hub.toml, agencies.toml and SQLite file;
keys from one test CA. Everything the agencies do goes through the real ``lienthong`` command
line. Forwarding between the hubs is whatever ``serve`` runs (the push dispatcher with the peer
channel): this test only looks from the outside.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest

from hub.config import credential_digest
from hub.edxml.writer import write_document
from signing.authority import publish_crl
from signing.keyfiles import write_file
from signing.pki import issue_agency_certificate, issue_hub_certificate, new_ca
from tests.acceptance.conftest import Project, describe, free_port, serving
from tests.support import document

pytestmark = pytest.mark.acceptance

COMMUNE = "000.01.31.H26"  # Phường Phúc Xá, served by the city hub
MINISTRY = "000.00.00.G12"  # Bộ Tài chính, served by the national hub
CITY_HUB = "lienthong.hanoi"
NATIONAL_HUB = "truc.quocgia"
PROPAGATION_DEADLINE = 30.0


def _hub_toml(project: Project, hub_id: str, material: Path, peer: str) -> str:
    return f"""
[hub]
id = "{hub_id}"
listen = "127.0.0.1:{project.port}"
key = "../var/hub/key.pem"
certificate = "../var/hub/cert.pem"

[database]
url = "sqlite+aiosqlite:///{project.database}"

[trust]
anchors = ["{material / "ca" / "cert.pem"}"]
crls = ["{material / "ca" / "crl.pem"}"]

[directory]
file = "agencies.toml"

[delivery]
retry_base_ms = 200
{peer}"""


def _agency(code: str, name: str, material: Path, *, via: str = "") -> str:
    folder = material / "agencies" / code
    if via:
        # Served by the other hub: its certificate only, so its signature verifies here.
        return f"""
[[agency]]
code = "{code}"
name = "{name}"
via = "{via}"
certificates = ["{folder / "cert.pem"}"]
"""
    return f"""
[[agency]]
code = "{code}"
name = "{name}"
certificates = ["{folder / "cert.pem"}"]
credential_file = "{folder / "credential.sha256"}"
"""


def _hub_account(code: str, serves: str, token: str) -> str:
    return f"""
[[agency]]
code = "{code}"
name = "Hub {code}"
role = "hub"
serves = ["{serves}"]
credential_sha256 = "{credential_digest(token)}"
"""


def _peer(name: str, url: str, credential_file: Path, routes: str) -> str:
    return f"""
[[peer]]
name = "{name}"
url = "{url}"
credential_file = "{credential_file}"
routes = ["{routes}"]
default = true
"""


def _material(root: Path) -> None:
    """One test CA (with its CRL), a key pair per hub and per agency, credentials."""
    ca = new_ca("Federation test CA")
    write_file(root / "ca" / "key.pem", ca.key_pem, secret=True)
    write_file(root / "ca" / "cert.pem", ca.cert_pem)
    publish_crl(root / "ca", ca)
    for code, name in ((COMMUNE, "UBND Phường Phúc Xá"), (MINISTRY, "Bộ Tài chính")):
        issued = issue_agency_certificate(ca, code=code, name=name)
        folder = root / "agencies" / code
        token = secrets.token_urlsafe(32)
        write_file(folder / "key.pem", issued.key_pem, secret=True)
        write_file(folder / "cert.pem", issued.cert_pem)
        write_file(folder / "credential", (token + "\n").encode(), secret=True)
        write_file(folder / "credential.sha256", (credential_digest(token) + "\n").encode())
    for hub_id in (CITY_HUB, NATIONAL_HUB):
        issued = issue_hub_certificate(ca, hub_id=hub_id)
        write_file(root / hub_id / "var" / "hub" / "key.pem", issued.key_pem, secret=True)
        write_file(root / hub_id / "var" / "hub" / "cert.pem", issued.cert_pem)


def _federated(root: Path) -> tuple[Project, Project]:
    """(city, national): two projects, each configured to forward to the other."""
    _material(root)
    city = Project(root / CITY_HUB, free_port())
    national = Project(root / NATIONAL_HUB, free_port())
    # Each hub issues the other a credential; each keeps the one it was issued in a file.
    city_at_national, national_at_city = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    write_file(city.root / "var" / "peer.credential", city_at_national.encode(), secret=True)
    write_file(national.root / "var" / "peer.credential", national_at_city.encode(), secret=True)
    configs = [
        (
            city,
            _hub_toml(
                city,
                CITY_HUB,
                root,
                _peer(
                    NATIONAL_HUB, national.url, city.root / "var" / "peer.credential", "*.*.*.G*"
                ),
            ),
            _agency(COMMUNE, "UBND Phường Phúc Xá", root)
            + _hub_account(NATIONAL_HUB, "*.*.*.G*", national_at_city)
            + _agency(MINISTRY, "Bộ Tài chính", root, via=NATIONAL_HUB),
        ),
        (
            national,
            _hub_toml(
                national,
                NATIONAL_HUB,
                root,
                _peer(CITY_HUB, city.url, national.root / "var" / "peer.credential", "*.*.*.H26"),
            ),
            _agency(MINISTRY, "Bộ Tài chính", root)
            + _hub_account(CITY_HUB, "*.*.*.H26", city_at_national)
            + _agency(COMMUNE, "UBND Phường Phúc Xá", root, via=CITY_HUB),
        ),
    ]
    for project, hub_toml, agencies in configs:
        (project.root / "config").mkdir(parents=True)
        project.config.write_text(hub_toml, encoding="utf-8")
        (project.root / "config" / "agencies.toml").write_text(agencies, encoding="utf-8")
        project.ok("db", "upgrade")
    return city, national


def _as(project: Project, root: Path, code: str, *args: str) -> str:
    """A command of agency *code* against *project*'s hub, with its own key and credential."""
    result = project.run(
        *args, "--as", code, "--hub", project.url, env=project.env(LIENTHONG_DEMO_DIR=str(root))
    )
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    return result.stdout


def _until(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + PROPAGATION_DEADLINE
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {PROPAGATION_DEADLINE:g} s")
        time.sleep(0.3)


def test_a_commune_writes_to_a_ministry_through_the_national_hub(tmp_path: Path) -> None:
    city, national = _federated(tmp_path)
    letter = tmp_path / "cong-van.edxml"
    letter.write_bytes(
        write_document(document(COMMUNE, (MINISTRY,), number="88", subject="V/v liên thông"))
    )

    listed = {a["code"]: a for a in json.loads(city.ok("agencies", "list", "--json"))}
    assert listed[MINISTRY]["via"] == NATIONAL_HUB and listed[MINISTRY]["delivery"] == "peer"
    assert listed[NATIONAL_HUB]["role"] == "hub" and listed[COMMUNE]["via"] is None
    assert f"via {NATIONAL_HUB}" in city.ok("agencies", "list")

    with serving(city), serving(national):
        sent = json.loads(_as(city, tmp_path, COMMUNE, "send", str(letter), "--json"))
        city_doc = sent["document_id"]
        (delivery,) = sent["deliveries"]
        assert delivery["recipient"] == MINISTRY

        # The ministry finds it in its inbox at the national hub: the bytes the commune signed.
        def ministry_inbox() -> list[dict[str, Any]]:
            items = json.loads(_as(national, tmp_path, MINISTRY, "inbox", "--json"))
            return [i for i in items if i["kind"] == "document"]

        (item,) = _until("the document did not reach the national hub", ministry_inbox)
        assert item["sender"] == COMMUNE
        assert item["package_sha256"] == sent["receipt"]["package_sha256"]
        out = tmp_path / "nhan.edxml"
        _as(national, tmp_path, MINISTRY, "fetch", item["document_id"], "--out", str(out))
        assert hashlib.sha256(out.read_bytes()).hexdigest() == sent["receipt"]["package_sha256"]
        _as(national, tmp_path, MINISTRY, "ack", item["delivery_id"])

        for code in ("01", "03", "06"):
            said = _as(national, tmp_path, MINISTRY, "status", item["document_id"], code)
            assert f"routed to {COMMUNE}" in said

        # The commune sees all three at its own hub: in its inbox and in the trace.
        def statuses() -> list[str]:
            items = json.loads(_as(city, tmp_path, COMMUNE, "inbox", "--json"))
            codes = [i["status_code"] for i in items if i["kind"] == "status"]
            return codes if len(codes) == 3 else []

        assert _until("the statuses did not come back", statuses) == ["01", "03", "06"]
        trace = json.loads(_as(city, tmp_path, COMMUNE, "trace", city_doc, "--json"))

    (recipient,) = trace["recipients"]
    assert recipient["recipient"] == MINISTRY and recipient["business"] == "06"
    assert recipient["transport"] == "delivered"
    reported = [e for e in trace["events"] if e["kind"] == "status"]
    assert [e["detail"]["code"] for e in reported] == ["01", "03", "06"]
    assert {(e["actor"], e["detail"]["via"]) for e in reported} == {(MINISTRY, NATIONAL_HUB)}
    (queued,) = [
        e for e in trace["events"] if e["kind"] == "queued" and e["detail"]["recipient"] == MINISTRY
    ]
    assert queued["detail"]["via"] == NATIONAL_HUB and queued["detail"]["mode"] == "peer"
    (forwarded,) = [
        e
        for e in trace["events"]
        if e["kind"] == "delivered" and e["detail"].get("how") == "forwarded"
    ]
    assert forwarded["detail"]["far_side"]["document_id"] == item["document_id"]
    assert forwarded["detail"]["far_side"]["signed_receipt"]["jws"]
