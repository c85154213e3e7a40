"""Keys, certificates and receipts through the real ``lienthong`` command and a real server.

A key rotation with overlap, a revocation picked up from the CRL, a certificate registered with
``agencies add-cert`` (comments of agencies.toml kept), and receipts verified offline.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tests.acceptance.conftest import Project, make_project, prepare, serving
from tests.acceptance.test_cli import as_json, expect, send, write_package
from tests.support import BA_DINH, CITY, HOAN_KIEM, PHUC_XA

pytestmark = pytest.mark.acceptance


def test_receipts_verify_offline_with_the_hub_certificate(hub: Project, tmp_path: Path) -> None:
    path = write_package(tmp_path, CITY, (BA_DINH,), "951", "V/v biên nhận có chữ ký của trục")
    answer = hub.run("send", str(path), "--as", CITY, "--json")
    expect(answer, 0)
    saved = tmp_path / "bien-nhan.json"
    saved.write_text(answer.stdout, encoding="utf-8")
    receipt = as_json(answer)

    stdout = hub.ok("receipt", "verify", str(saved))  # the configured hub certificate
    assert "valid submission receipt" in stdout
    assert receipt["receipt"]["package_sha256"] in stdout
    hub_cert = hub.demo_dir / "hub" / "cert.pem"
    verified = as_json(
        hub.run("receipt", "verify", str(saved), "--certificate", str(hub_cert), "--json")
    )
    assert verified["document_id"] == receipt["document_id"]
    assert verified["recipients"] == [BA_DINH]

    # Only the JWS, one character changed: invalid, exit 1, and why.
    jws = receipt["signed_receipt"]["jws"]
    head, body, signature = jws.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    (tmp_path / "forged.jws").write_text(f"{head}.{flipped}.{signature}")
    result = hub.run("receipt", "verify", str(tmp_path / "forged.jws"))
    expect(result, 1, "INVALID receipt")
    # Another certificate than the hub's: invalid too.
    other = hub.demo_dir / "agencies" / CITY / "cert.pem"
    result = hub.run("receipt", "verify", str(saved), "--certificate", str(other))
    expect(result, 1, "INVALID receipt")

    # The recipient acknowledges: the sender finds a delivery receipt in its inbox.
    (delivery,) = receipt["deliveries"]
    hub.ok("ack", delivery["delivery_id"], "--as", BA_DINH)
    items = [
        i
        for i in as_json(hub.run("inbox", "--as", CITY, "--json"))
        if i["kind"] == "receipt" and i["document_id"] == receipt["document_id"]
    ]
    assert len(items) == 1, items
    out = tmp_path / "giao-nhan.json"
    hub.ok("fetch", items[0]["receipt_id"], "--receipt", "--as", CITY, "--out", str(out))
    stdout = hub.ok("receipt", "verify", str(out))
    assert "valid delivery receipt" in stdout
    assert f"{BA_DINH} acknowledged done" in stdout


def test_rotation_overlap_then_revocation(tmp_path_factory: pytest.TempPathFactory) -> None:
    project = prepare(make_project(tmp_path_factory.mktemp("rotation")))
    folder = project.demo_dir / "agencies" / BA_DINH
    stdout = project.ok("keys", "rotate", "--agency", BA_DINH)
    (old_cert,) = folder.glob("cert-*.pem")
    (old_key,) = folder.glob("key-*.pem")
    assert f"registered {old_cert}" in stdout, stdout
    for key in (folder / "key.pem", old_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "PRIVATE KEY" not in stdout
    agencies = (project.root / "config" / "agencies.toml").read_text(encoding="utf-8")
    assert agencies.startswith("# The agency directory.")  # its comments are kept
    assert f"../var/demo/agencies/{BA_DINH}/{old_cert.name}" in agencies

    tmp = tmp_path_factory.mktemp("packages")
    with serving(project):
        # The new key (the default) and the old one both verify during the overlap.
        send(project, write_package(tmp, BA_DINH, (PHUC_XA,), "961", "V/v khóa mới"), BA_DINH)
        old_args = ("--key", str(old_key), "--cert", str(old_cert))
        path = write_package(tmp, BA_DINH, (PHUC_XA,), "962", "V/v khóa cũ")
        expect(project.run("send", str(path), "--as", BA_DINH, *old_args), 0)

    stdout = project.ok("keys", "revoke", str(old_cert))
    assert "revoked" in stdout
    with serving(project):  # a restart reads the CRL at once (else: at the next refresh)
        path = write_package(tmp, BA_DINH, (PHUC_XA,), "963", "V/v khóa đã thu hồi")
        result = project.run("send", str(path), "--as", BA_DINH, *old_args)
        expect(result, 4, "certificate.revoked")
        send(project, write_package(tmp, BA_DINH, (PHUC_XA,), "964", "V/v khóa mới"), BA_DINH)


def test_add_cert_registers_only_a_trusted_certificate_of_that_agency(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    project = prepare(make_project(tmp_path_factory.mktemp("add-cert")))
    agencies_file = project.root / "config" / "agencies.toml"
    comments = [line for line in agencies_file.read_text().splitlines() if line.startswith("#")]
    issued = project.root / "var" / "issued"
    stdout = project.ok(
        "keys", "issue", "--agency", HOAN_KIEM, "--out", str(issued), "--key-type", "ec"
    )
    assert stat.S_IMODE((issued / "key.pem").stat().st_mode) == 0o600
    assert f"registered {issued / 'cert.pem'} for {HOAN_KIEM}" in stdout

    # A certificate naming another agency is refused.
    result = project.run("agencies", "add-cert", CITY, str(issued / "cert.pem"))
    expect(result, 1, f"names agency {HOAN_KIEM}, not {CITY}")

    # A certificate from a CA the hub does not trust is issued but not registered …
    stranger = project.root / "var" / "stranger-ca"
    project.ok("keys", "init-ca", "--dir", str(stranger), "--name", "Stranger CA")
    other = project.root / "var" / "other"
    result = project.run(
        "keys", "issue", "--agency", CITY, "--ca", str(stranger), "--out", str(other)
    )
    expect(result, 1, "certificate.untrusted_issuer")
    assert "other/cert.pem" not in agencies_file.read_text()
    # … nor by add-cert, unless forced.
    result = project.run("agencies", "add-cert", CITY, str(other / "cert.pem"))
    expect(result, 1, "certificate.untrusted_issuer", "--force")
    assert "other/cert.pem" not in agencies_file.read_text()
    stdout = project.ok("agencies", "add-cert", CITY, str(other / "cert.pem"), "--force")
    assert "registered" in stdout
    text = agencies_file.read_text()
    assert "../var/other/cert.pem" in text
    assert [line for line in text.splitlines() if line.startswith("#")] == comments
    # Registering it again changes nothing.
    assert "already registered" in project.ok(
        "agencies", "add-cert", CITY, str(other / "cert.pem"), "--force"
    )
    assert agencies_file.read_text() == text


def test_keys_init_ca_refuses_to_replace_a_ca(tmp_path: Path, project: Project) -> None:
    folder = tmp_path / "ca"
    stdout = project.ok("keys", "init-ca", "--dir", str(folder), "--key-type", "ec")
    assert "crl.pem" in stdout
    assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
    result = project.run("keys", "init-ca", "--dir", str(folder))
    expect(result, 2, "already holds a CA")
