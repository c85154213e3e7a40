"""The demo exchange, played by agencies through the SDK over HTTP, as real systems would.

1. The city People's Committee sends an urgent, signed document with a PDF to two districts;
   each district downloads it, acknowledges transport and reports 01, 03, 05 and 06.
2. Ba Đình district sends a document to its two wards; Phúc Xá works it through to 06, while
   Trúc Bạch rejects it (02) with a reason.
3. Each sender collects the status packages that came back to its inbox, and the delivery
   receipts the hub signed; every receipt is checked with the hub's certificate alone.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from adapters.sdk import VIETNAM, AgencyClient, Credentials
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
    StatusCode,
    TraceHeader,
)
from signing.receipts import verify_receipt

CITY = "000.00.00.H26"
BA_DINH = "000.00.31.H26"
HOAN_KIEM = "000.00.32.H26"
PHUC_XA = "000.01.31.H26"
TRUC_BACH = "000.02.31.H26"
PARTICIPANTS = (CITY, BA_DINH, HOAN_KIEM, PHUC_XA, TRUC_BACH)

REJECTION_REASON = "Văn bản chưa có chữ ký số của người có thẩm quyền; đề nghị ký số và gửi lại."


def tiny_pdf(text: str) -> bytes:
    """A small, valid one-page PDF (ASCII text: the base-14 fonts have no Vietnamese glyphs)."""
    stream = zlib.compress(f"BT /F1 14 Tf 72 760 Td ({text}) Tj ET".encode("ascii"))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def build_document(
    sender: Organization,
    recipients: list[Organization],
    number: str,
    notation: str,
    subject: str,
    priority: Priority,
    pdf_name: str,
) -> DocumentPackage:
    now = datetime.now(UTC).astimezone(VIETNAM)
    date = now.strftime("%Y/%m/%d")
    return DocumentPackage(
        sender=sender,
        recipients=tuple(recipients),
        document_id=f"{sender.organ_id},{date},{number}/{notation}",
        code=Code(number, notation),
        promulgation=PromulgationInfo("Hà Nội", date),
        document_type=DocumentType("1", "", "Công văn"),
        subject=subject,
        content=subject,
        signer=SignerInfo("TM. ỦY BAN NHÂN DÂN", "Chủ tịch", "Nguyễn Văn A"),
        other=OtherInfo(priority=priority, sphere_of_promulgation="Liên thông văn bản Thành phố"),
        trace=(TraceHeader(sender.organ_id, now.strftime("%Y/%m/%d %H:%M:%S")),),
        attachments=(
            Attachment.from_bytes(
                f"{number}-1",
                pdf_name,
                "application/pdf",
                tiny_pdf(f"Cong van so {number}/{notation}"),
            ),
        ),
    )


def _number(doc: DocumentPackage) -> str:
    return f"{doc.code.number}/{doc.code.notation}"


async def _work_through(
    client: AgencyClient,
    document_id: str,
    codes: list[tuple[StatusCode, str]],
    say: Callable[[str], None],
) -> None:
    """What a recipient's system does: wait for the document, download, acknowledge, report."""
    me = client.credentials.code
    items = [
        i
        for i in await client.inbox(wait=10)
        if i["document_id"] == document_id and i["kind"] == "document"
    ]
    if not items:
        raise RuntimeError(f"{me} did not receive document {document_id}")
    await client.fetch(items[0]["href"])
    await client.ack(items[0]["delivery_id"], "done")
    say(f"  {me} downloaded and acknowledged it")
    for code, description in codes:
        await client.report(document_id, code, description)
        say(
            f"  {me} reported {code.value} ({code.meaning})"
            + (f": {description}" if description else "")
        )


async def _collect_statuses(
    client: AgencyClient, say: Callable[[str], None], hub_certificate: x509.Certificate | None
) -> None:
    """The sender's system picks up the status packages routed back to it, and the delivery
    receipts the hub signed for it (checked with the hub's certificate alone)."""
    count = receipts = 0
    for item in await client.inbox(limit=500):
        if item["kind"] == "status":
            await client.fetch(item["href"])
        elif item["kind"] == "receipt":
            signed = json.loads(await client.fetch(item["href"]))
            if hub_certificate is not None:
                proof = verify_receipt(signed["jws"], hub_certificate).payload
                say(
                    f"  {client.credentials.code} holds a signed delivery receipt: "
                    f"{proof['recipient']} acknowledged {proof['result']} at "
                    f"{proof['acknowledged_at']}"
                )
            receipts += 1
        else:
            continue
        await client.ack(item["delivery_id"], "done")
        count += item["kind"] == "status"
    say(
        f"  {client.credentials.code} collected {count} status package(s) and {receipts} "
        "delivery receipt(s) from its inbox"
    )


def _check_receipt(
    answer: dict[str, Any], hub_certificate: x509.Certificate | None, say: Callable[[str], None]
) -> None:
    """What a sender's system does with the 202 answer: keep the signed receipt, check it."""
    if hub_certificate is None:
        return
    proof = verify_receipt(answer["signed_receipt"]["jws"], hub_certificate).payload
    say(
        f"  the hub's signed receipt verifies with its certificate alone: sha256 "
        f"{proof['package_sha256'][:16]}…, {proof['size']} bytes, received {proof['issued_at']}"
    )


async def run_exchange(
    hub_url: str,
    credentials: dict[str, Credentials],
    say: Callable[[str], None] = print,
    hub_certificate: x509.Certificate | None = None,
) -> list[str]:
    """Play the demo exchange against the hub at *hub_url*; returns the two document ids.

    With *hub_certificate*, every receipt the hub signs is verified with it (offline)."""
    # Each run sends new documents, not retries of the last run's (signatures are deterministic,
    # so the same content would be the same bytes and be answered as a duplicate).
    serial = str(time.time_ns() // 1_000_000 % 10**9)
    clients = {code: AgencyClient(hub_url, credentials[code]) for code in PARTICIPANTS}
    for client in clients.values():
        await client.__aenter__()
    try:
        city, ba_dinh = clients[CITY], clients[BA_DINH]

        doc1 = build_document(
            Organization(CITY, "Ủy ban nhân dân Thành phố Hà Nội"),
            [Organization(BA_DINH), Organization(HOAN_KIEM)],
            serial,
            "UBND-VP",
            "V/v triển khai liên thông văn bản điện tử trên địa bàn Thành phố",
            Priority.URGENT,
            "cong-van-lien-thong.pdf",
        )
        receipt1 = await city.send(doc1)
        doc1_id = receipt1["document_id"]
        say(f"{CITY} sent {_number(doc1)} to {BA_DINH} and {HOAN_KIEM}: document {doc1_id}")
        _check_receipt(receipt1, hub_certificate, say)
        flow = [
            (StatusCode.ARRIVED, ""),
            (StatusCode.ACCEPTED, "Đã vào sổ văn bản đến"),
            (StatusCode.IN_PROGRESS, "Giao Phòng Văn hóa và Thông tin xử lý"),
            (StatusCode.FINISHED, "Đã hoàn thành"),
        ]
        for district in (BA_DINH, HOAN_KIEM):
            await _work_through(clients[district], doc1_id, flow, say)

        doc2 = build_document(
            Organization(BA_DINH, "Ủy ban nhân dân Quận Ba Đình"),
            [Organization(PHUC_XA), Organization(TRUC_BACH)],
            serial,
            "UBND-VP",
            "V/v rà soát hồ sơ cải cách hành chính cấp phường",
            Priority.NORMAL,
            "ra-soat-hanh-chinh.pdf",
        )
        receipt2 = await ba_dinh.send(doc2)
        doc2_id = receipt2["document_id"]
        say(f"{BA_DINH} sent {_number(doc2)} to {PHUC_XA} and {TRUC_BACH}: document {doc2_id}")
        _check_receipt(receipt2, hub_certificate, say)
        await _work_through(clients[PHUC_XA], doc2_id, flow, say)
        await _work_through(
            clients[TRUC_BACH],
            doc2_id,
            [(StatusCode.ARRIVED, ""), (StatusCode.REJECTED, REJECTION_REASON)],
            say,
        )
        await _collect_statuses(city, say, hub_certificate)
        await _collect_statuses(ba_dinh, say, hub_certificate)
        return [doc1_id, doc2_id]
    finally:
        for client in clients.values():
            await client.__aexit__(None, None, None)
