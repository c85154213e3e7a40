"""The real ``lienthong`` command against a real ``lienthong serve``, as an agency's staff use it.

Every command runs in a subprocess with LIENTHONG_CONFIG naming a throw-away project (see
conftest.py); the hub is a separate ``lienthong serve`` process on a free loopback port.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.demo import PARTICIPANTS, REJECTION_REASON, tiny_pdf
from hub.edxml.model import (
    Attachment,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    SignerInfo,
)
from hub.edxml.reader import read_document
from hub.edxml.writer import write_document
from hub.xmlsafe import parse
from tests.acceptance.conftest import Project, describe, free_port, make_project, prepare
from tests.support import BA_DINH, CITY, HOAN_KIEM, PHUC_XA, SAMPLES, TRUC_BACH

pytestmark = pytest.mark.acceptance

REASON = "Văn bản thiếu phụ lục kèm theo; đề nghị bổ sung và gửi lại."
STATUS_CODES = "01, 02, 03, 04, 05, 06, 13, 15, 16"
SUBCOMMANDS = (
    ("serve",),
    ("db",),
    ("db", "upgrade"),
    ("agencies",),
    ("agencies", "list"),
    ("agencies", "add-cert"),
    ("keys",),
    ("keys", "init-ca"),
    ("keys", "issue"),
    ("keys", "rotate"),
    ("keys", "revoke"),
    ("receipt",),
    ("receipt", "verify"),
    ("send",),
    ("inbox",),
    ("fetch",),
    ("attachments",),
    ("ack",),
    ("status",),
    ("trace",),
    ("validate",),
    ("demo",),
    ("demo", "init"),
    ("maintenance",),
)


def expect(result: subprocess.CompletedProcess[str], code: int, *in_stderr: str) -> None:
    """The command exited with *code*, said each of *in_stderr* on stderr, and did not crash."""
    assert result.returncode == code, describe(result)
    assert "Traceback" not in result.stderr + result.stdout, describe(result)
    for text in in_stderr:
        assert text in result.stderr, f"{text!r} not on stderr" + describe(result)


def write_package(
    folder: Path, sender: str, recipients: tuple[str, ...], number: str, subject: str
) -> Path:
    """An unsigned edXML document package with a PDF attached, as an agency's system writes it."""
    date = "2026/11/22"
    package = DocumentPackage(
        sender=Organization(sender, f"Cơ quan {sender}"),
        recipients=tuple(Organization(r) for r in recipients),
        document_id=f"{sender},{date},{number}/UBND-VP",
        code=Code(number, "UBND-VP"),
        promulgation=PromulgationInfo("Hà Nội", date),
        document_type=DocumentType("1", "", "Công văn"),
        subject=subject,
        content=subject,
        signer=SignerInfo("TM. ỦY BAN NHÂN DÂN", "Chủ tịch", "Nguyễn Văn A"),
        other=OtherInfo(priority=Priority.URGENT),
        attachments=(
            Attachment.from_bytes(
                f"{number}-1", "cong-van.pdf", "application/pdf", tiny_pdf(f"Cong van {number}")
            ),
        ),
    )
    path = folder / f"{sender}-{number}.edxml"
    path.write_bytes(write_document(package))
    return path


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON: {exc}" + describe(result)) from None


# --- 1. the whole exchange -------------------------------------------------------------------


def send(hub: Project, path: Path, sender: str) -> dict[str, Any]:
    result = hub.run("send", str(path), "--as", sender, "--json")
    expect(result, 0)
    receipt = as_json(result)
    assert isinstance(receipt, dict), describe(result)
    return receipt


def receive(hub: Project, tmp: Path, code: str, receipt: dict[str, Any]) -> None:
    """A recipient finds the document in its inbox, downloads it byte for byte and acks it."""
    doc_id = receipt["document_id"]
    (delivery,) = [d for d in receipt["deliveries"] if d["recipient"] == code]
    result = hub.run("inbox", "--as", code, "--json")
    expect(result, 0)
    items = [i for i in as_json(result) if i["document_id"] == doc_id]
    assert len(items) == 1, describe(result)
    assert items[0]["kind"] == "document" and items[0]["delivery_id"] == delivery["delivery_id"]

    out = tmp / f"{code}.edxml"
    stdout = hub.ok("fetch", str(doc_id), "--as", code, "--out", str(out))
    assert str(out) in stdout
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest == receipt["receipt"]["package_sha256"]

    stdout = hub.ok("ack", delivery["delivery_id"], "--as", code)
    assert delivery["delivery_id"] in stdout and "done" in stdout
    pending = as_json(hub.run("inbox", "--as", code, "--json"))
    assert doc_id not in [i["document_id"] for i in pending], pending


def report(hub: Project, doc_id: str, code: str, status: str, reason: str = "", *, to: str) -> None:
    args = ("--reason", reason) if reason else ()
    stdout = hub.ok("status", doc_id, status, "--as", code, *args)
    assert f"status {status} recorded" in stdout and f"routed to {to}" in stdout, stdout


def recipient_line(table: str, code: str) -> str:
    lines = [line for line in table.splitlines() if line.startswith(code)]
    assert lines, f"no row for {code} in\n{table}"
    return lines[0]


def test_the_demo_exchange_through_the_cli(hub: Project, tmp_path: Path) -> None:
    # The city sends an urgent document with a PDF to two districts; both finish it (06).
    path = write_package(
        tmp_path, CITY, (BA_DINH, HOAN_KIEM), "901", "V/v kiểm thử liên thông qua dòng lệnh"
    )
    receipt1 = send(hub, path, CITY)
    doc1 = str(receipt1["document_id"])
    assert receipt1["duplicate"] is False
    assert {d["recipient"] for d in receipt1["deliveries"]} == {BA_DINH, HOAN_KIEM}
    for district in (BA_DINH, HOAN_KIEM):
        receive(hub, tmp_path, district, receipt1)
        for status in ("01", "03", "05", "06"):
            report(hub, doc1, district, status, to=CITY)

    # Ba Đình sends to its two wards: Phúc Xá finishes it, Trúc Bạch rejects it with a reason.
    path = write_package(
        tmp_path, BA_DINH, (PHUC_XA, TRUC_BACH), "902", "V/v rà soát hồ sơ cấp phường"
    )
    receipt2 = send(hub, path, BA_DINH)
    doc2 = str(receipt2["document_id"])
    for ward in (PHUC_XA, TRUC_BACH):
        receive(hub, tmp_path, ward, receipt2)
    for status in ("01", "03", "05", "06"):
        report(hub, doc2, PHUC_XA, status, to=BA_DINH)
    report(hub, doc2, TRUC_BACH, "01", to=BA_DINH)
    report(hub, doc2, TRUC_BACH, "02", REASON, to=BA_DINH)

    # The senders' traces, as a table and as JSON.
    table = hub.ok("trace", doc1, "--as", CITY)
    assert doc1 in table
    for district in (BA_DINH, HOAN_KIEM):
        assert "06 hoàn thành" in recipient_line(table, district), table
    table = hub.ok("trace", doc2, "--as", BA_DINH)
    assert "06 hoàn thành" in recipient_line(table, PHUC_XA), table
    assert "02 từ chối" in recipient_line(table, TRUC_BACH), table
    assert REASON in table

    trace = as_json(hub.run("trace", doc2, "--as", BA_DINH, "--json"))
    assert isinstance(trace, dict)
    assert trace["document"]["document_id"] == doc2
    assert trace["document"]["package_sha256"] == receipt2["receipt"]["package_sha256"]
    states = {r["recipient"]: (r["transport"], r["business"]) for r in trace["recipients"]}
    assert states == {PHUC_XA: ("done", "06"), TRUC_BACH: ("done", "02")}
    rejections = [
        e["detail"]
        for e in trace["events"]
        if e["kind"] == "status" and e["detail"]["code"] == "02"
    ]
    assert [r["description"] for r in rejections] == [REASON]

    # Every status package came back to the sender's inbox, beside one signed delivery
    # receipt per recipient that acknowledged the document.
    city_inbox = as_json(hub.run("inbox", "--as", CITY, "--json"))
    city_statuses = [i for i in city_inbox if i["kind"] == "status"]
    assert sorted((i["reporter"], i["status_code"]) for i in city_statuses) == sorted(
        (district, code) for district in (BA_DINH, HOAN_KIEM) for code in ("01", "03", "05", "06")
    )
    city_receipts = [i for i in city_inbox if i["kind"] == "receipt"]
    assert len(city_receipts) == 2, city_inbox
    assert {i["kind"] for i in city_inbox} == {"status", "receipt"}
    assert all(i["document_id"] == doc1 for i in city_inbox)
    ba_dinh_inbox = as_json(hub.run("inbox", "--as", BA_DINH, "--json"))
    statuses = [i for i in ba_dinh_inbox if i["kind"] == "status"]
    assert sorted((i["reporter"], i["status_code"]) for i in statuses) == sorted(
        [(PHUC_XA, c) for c in ("01", "03", "05", "06")] + [(TRUC_BACH, "01"), (TRUC_BACH, "02")]
    )
    # The rejection itself, downloaded as the signed status package the ward sent.
    (rejection,) = [i for i in statuses if i["status_code"] == "02"]
    result = hub.run("fetch", rejection["status_id"], "--status", "--as", BA_DINH)
    expect(result, 0)
    assert "<edXML:StatusCode>02</edXML:StatusCode>" in result.stdout
    assert REASON in result.stdout


# --- 2. what a user gets wrong ---------------------------------------------------------------


def test_sending_a_file_that_does_not_exist(hub: Project, tmp_path: Path) -> None:
    missing = tmp_path / "khong-co.edxml"
    result = hub.run("send", str(missing), "--as", CITY)
    expect(result, 2, "cannot read", str(missing))


def test_an_unknown_status_code_lists_the_valid_ones(hub: Project) -> None:
    result = hub.run("status", "DOC", "07", "--as", BA_DINH)
    expect(result, 2, "'07' is not a status code", STATUS_CODES)


def test_sending_without_a_credential_file(hub: Project, tmp_path: Path) -> None:
    path = write_package(tmp_path, CITY, (BA_DINH,), "903", "V/v thiếu chứng thư")
    missing = tmp_path / "credential"
    result = hub.run("send", str(path), "--as", CITY, "--credential-file", str(missing))
    expect(result, 3, str(missing), "not found")

    # An agency with no demo material at all: the default credential path, and what to do.
    empty = tmp_path / "demo"
    empty.mkdir()
    result = hub.run("send", str(path), "--as", CITY, env=hub.env(LIENTHONG_DEMO_DIR=str(empty)))
    expect(result, 3, str(empty / "agencies" / CITY / "credential"), "lienthong demo init")


def test_a_signing_key_that_does_not_exist(hub: Project, tmp_path: Path) -> None:
    path = write_package(tmp_path, CITY, (BA_DINH,), "905", "V/v khóa ký không tồn tại")
    missing = tmp_path / "khoa-ky.pem"
    result = hub.run("send", str(path), "--as", CITY, "--key", str(missing))
    expect(result, 3, str(missing), "not found")


def test_a_credential_the_hub_does_not_know(hub: Project) -> None:
    result = hub.run("inbox", "--as", CITY, env=hub.env(LIENTHONG_CREDENTIAL="khong-hop-le"))
    expect(result, 4, "auth.invalid")


def test_a_hub_that_is_not_running(hub: Project) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    result = hub.run("inbox", "--as", CITY, "--hub", f"http://{nowhere}")
    expect(result, 4, nowhere)


def test_the_hub_refuses_an_unknown_recipient(hub: Project, tmp_path: Path) -> None:
    path = write_package(tmp_path, CITY, (BA_DINH, "000.09.99.H26"), "904", "V/v gửi nhầm")
    result = hub.run("send", str(path), "--as", CITY)
    expect(result, 4, "recipient.unknown", "000.09.99.H26", "To[2]/OrganId")
    assert result.stdout == "", describe(result)


def test_serve_refuses_a_listen_address_that_is_not_host_port(project: Project) -> None:
    config = project.write_config(
        "bad-listen.toml",
        listen="nonsense",
        database_url=f"sqlite+aiosqlite:///{project.database}",
    )
    result = project.run("serve", env=project.env(LIENTHONG_CONFIG=str(config)), timeout=30)
    expect(result, 3, str(config), "hub.listen", "nonsense")


def test_serve_refuses_a_database_that_was_never_upgraded(project: Project) -> None:
    config = project.write_config(
        "fresh-db.toml",
        listen=f"127.0.0.1:{free_port()}",
        database_url=f"sqlite+aiosqlite:///{project.root / 'var' / 'never-upgraded.db'}",
    )
    result = project.run("serve", env=project.env(LIENTHONG_CONFIG=str(config)), timeout=30)
    expect(result, 3, "lienthong db upgrade")


# --- 3. validate on the official SDK samples -------------------------------------------------

# What the SDK samples must give (see the samples' SOURCE.md); every status sample is valid.
INVALID_SAMPLES = {
    "edoc_new.edxml": ("stray byte", "line 1"),  # "1212" before the XML declaration
    "edoc.edxml": ("xlink",),  # xlink:href with the xlink prefix never declared
}
SAMPLE_FILES = (
    [pytest.param(p, id=p.name) for p in sorted(SAMPLES.glob("*.edxml"))]
    if SAMPLES.is_dir()
    else [pytest.param(None, marks=pytest.mark.skip(reason=f"no SDK samples at {SAMPLES}"))]
)


@pytest.mark.parametrize("sample", SAMPLE_FILES)
def test_validate_the_sdk_samples(project: Project, sample: Path) -> None:
    result = project.run("validate", str(sample))
    report = project.run("validate", str(sample), "--json")
    assert report.returncode == result.returncode, describe(report)
    verdict = as_json(report)
    assert isinstance(verdict, dict)
    assert verdict["valid"] is (result.returncode == 0), describe(report)

    if sample.name.startswith("status"):
        expect(result, 0)
        assert "valid status package" in result.stdout, describe(result)
        assert verdict["kind"] == "status" and verdict["errors"] == []
    elif sample.name in INVALID_SAMPLES:
        expect(result, 1)
        assert "INVALID" in result.stdout, describe(result)
        for text in INVALID_SAMPLES[sample.name]:
            assert text in result.stdout, f"{text!r} not in the report" + describe(result)
        assert verdict["errors"], describe(report)
        if sample.name == "edoc_new.edxml":
            assert verdict["errors"][0]["line"] == 1, describe(report)
    else:
        assert result.returncode in (0, 1), describe(result)
        assert "Traceback" not in result.stderr, describe(result)


def test_the_samples_with_known_faults_are_there() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"no SDK samples at {SAMPLES}")
    assert {p.name for p in SAMPLES.glob("*.edxml")} >= set(INVALID_SAMPLES)


# --- 4. the one-command demo -----------------------------------------------------------------


def test_demo_exit_plays_the_whole_exchange(tmp_path_factory: pytest.TempPathFactory) -> None:
    demo = make_project(tmp_path_factory.mktemp("demo-project"))  # its own keys, db and port
    result = demo.run("demo", "--exit", timeout=120)
    expect(result, 0)
    output = result.stdout
    assert "06 hoàn thành" in output, describe(result)
    assert "02 từ chối" in output, describe(result)
    assert REJECTION_REASON in output, describe(result)
    for code in PARTICIPANTS:
        assert code in output, f"{code} not in the demo output" + describe(result)
    assert output.count("Document ") >= 2, describe(result)  # both traces
    assert demo.database.exists()


def test_demo_init_keeps_existing_material(tmp_path_factory: pytest.TempPathFactory) -> None:
    fresh = prepare(make_project(tmp_path_factory.mktemp("init-project")))
    credential = fresh.demo_dir / "agencies" / CITY / "credential"
    before = credential.read_bytes()
    stdout = fresh.ok("demo", "init")
    assert credential.read_bytes() == before, stdout
    assert "demo material is ready" in stdout


# --- 5. help ---------------------------------------------------------------------------------


def test_help(project: Project) -> None:
    stdout = project.ok("--help")
    assert "usage: lienthong" in stdout and "edXML" in stdout
    for (name,) in [c for c in SUBCOMMANDS if len(c) == 1]:
        assert name in stdout, f"{name} not listed in lienthong --help"


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_subcommand_help(project: Project, command: tuple[str, ...]) -> None:
    stdout = project.ok(*command, "--help")
    assert f"usage: lienthong {' '.join(command)}" in stdout, stdout
    # argparse prints the usage, a blank line, the description (if any), then the sections
    # ("positional arguments:", "options:", …), each headed by a line ending in a colon.
    block = stdout.split("\n\n")[1]
    is_section = block.splitlines()[0].endswith(":")
    assert not is_section and len(block.split()) >= 2, (
        f"`lienthong {' '.join(command)} --help` does not say what the command does:\n{stdout}"
    )


def test_attachments_are_saved_under_their_original_names(hub: Project, tmp_path: Path) -> None:
    path = write_package(tmp_path, CITY, (BA_DINH,), "41", "V/v tệp đính kèm")
    pdf = tiny_pdf("Cong van 41")
    wrapper = io.BytesIO()  # the SDK's form: the file zipped, the zip base64-encoded
    with zipfile.ZipFile(wrapper, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("0d9c1f4e-8a3b-4c2d-9e1f-123456789abc.pdf", pdf)
    pkg = read_document(parse(path.read_bytes()))
    extra = Attachment.from_bytes(
        "41-2", "../Quyết định 41/QĐ-UBND.pdf", "application/pdf", wrapper.getvalue()
    )
    path.write_bytes(write_document(replace(pkg, attachments=(*pkg.attachments, extra))))
    doc_id = send(hub, path, CITY)["document_id"]

    out = tmp_path / "tệp nhận"
    result = hub.run("attachments", doc_id, "--as", BA_DINH, "--out", str(out))
    expect(result, 0)
    assert sorted(p.name for p in out.iterdir()) == ["Quyết định 41_QĐ-UBND.pdf", "cong-van.pdf"]
    assert (out / "cong-van.pdf").read_bytes() == pdf
    assert (out / "Quyết định 41_QĐ-UBND.pdf").read_bytes() == pdf
    digest = hashlib.sha256(pdf).hexdigest()
    lines = result.stdout.splitlines()
    assert lines[0] == f"cong-van.pdf: {len(pdf)} bytes, sha256 {digest}, not zipped"
    assert lines[1].startswith(
        f"Quyết định 41_QĐ-UBND.pdf: {len(pdf)} bytes, sha256 {digest}, zipped"
    )
    # The hub recorded each file's decoded size and digest, and the trace shows them.
    trace = hub.ok("trace", doc_id, "--as", CITY)
    assert f"({len(pdf)} bytes, sha256 {digest[:12]}…, zipped)" in trace
    # Someone who may not see the document gets nothing.
    expect(hub.run("attachments", doc_id, "--as", HOAN_KIEM, "--out", str(out)), 4, "not_found")
