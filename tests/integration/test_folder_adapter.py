"""The folder adapter against a real hub on loopback: files dropped in outbox/ and status/ are
sent and filed in sent/ or failed/; what the hub delivers lands in inbox/, complete or not at
all; a crash between sending and filing never sends a document twice."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.base import Outgoing, Settled
from adapters.demo import tiny_pdf
from adapters.folder import FolderAdapter
from adapters.runner import Runner, received_from_item
from adapters.sdk import AgencyClient, Credentials
from hub.edxml.writer import write_document
from tests.support import BA_DINH, CITY, HOAN_KIEM, Hub, document
from tracking.models import Document

Folders = Callable[[str], "Agent"]


class Agent:
    """One agency's folder adapter, with a runner and client of its own."""

    def __init__(self, hub: Hub, code: str, root: Path) -> None:
        account = hub.world.accounts[code]
        assert account.issued is not None
        self.credentials = Credentials(
            code, account.token, account.issued.key_pem, account.issued.cert_pem
        )
        self.url = str(hub.http.make_url("")).rstrip("/")
        self.root = root
        self.adapter = FolderAdapter(root, self.credentials, quiet_seconds=0)
        self.client = AgencyClient(self.url, self.credentials)

    async def step(self) -> None:
        """One runner step: send what is in the folders, deliver what the inbox holds."""
        await Runner(self.adapter, self.client, lease=60, backoff=0.01).run_once()

    def drop(self, folder: str, name: str, data: bytes) -> Path:
        """What an agency system does: write under a temporary name, then rename."""
        target = self.root / folder / name
        temporary = target.with_name(name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, target)
        return target


@pytest.fixture
async def agents(hub: Hub, tmp_path: Path) -> AsyncIterator[Folders]:
    made: list[Agent] = []

    def make(code: str) -> Agent:
        agent = Agent(hub, code, tmp_path / code)
        made.append(agent)
        return agent

    yield make
    for agent in made:
        await agent.client.__aexit__(None, None, None)
        await agent.adapter.close()


async def started(agent: Agent) -> Agent:
    await agent.client.__aenter__()
    await agent.adapter.start()
    return agent


def names(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


LETTER = """
subject = "V/v triển khai liên thông văn bản điện tử"
number = "125"
notation = "UBND-VP"
recipients = ["000.00.31.H26"]
attachments = ["cv-125.pdf"]
priority = "khẩn"
due_date = 2026-12-15
signer = { position = "Chủ tịch", full_name = "Nguyễn Văn A" }
"""


async def test_an_edxml_and_a_pdf_with_metadata_are_sent_and_arrive(
    hub: Hub, agents: Folders
) -> None:
    city = await started(agents(CITY))
    ba_dinh = await started(agents(BA_DINH))
    pdf = tiny_pdf("Cong van 125")
    city.drop("outbox", "cv-125.pdf", pdf)
    city.drop("outbox", "cv-125.toml", LETTER.encode())
    unsigned = write_document(document(CITY, (BA_DINH, HOAN_KIEM), number="7"))
    city.drop("outbox", "cv-7.edxml", unsigned)

    await city.step()

    assert names(city.root / "outbox") == set()
    sent = names(city.root / "sent")
    assert {
        "cv-125.toml",
        "cv-125.pdf",
        "cv-125.toml.receipt.json",
        "cv-125.toml.signed.edxml",
        "cv-7.edxml",
        "cv-7.edxml.receipt.json",
        "cv-7.edxml.signed.edxml",  # the adapter signed it with the agency's key
    } == sent
    receipt = json.loads((city.root / "sent" / "cv-125.toml.receipt.json").read_text())
    assert receipt["duplicate"] is False and receipt["signed_receipt"]["jws"]

    await ba_dinh.step()

    letter = ba_dinh.root / "inbox" / receipt["document_id"]
    assert names(letter) == {"package.edxml", "metadata.json", "cv-125.pdf"}
    assert (letter / "cv-125.pdf").read_bytes() == pdf
    meta = json.loads((letter / "metadata.json").read_text(encoding="utf-8"))
    assert meta["sender"]["code"] == CITY
    assert meta["subject"] == "V/v triển khai liên thông văn bản điện tử"
    assert (meta["code"], meta["priority_name"], meta["due_date"]) == (
        {"number": "125", "notation": "UBND-VP"},
        "urgent",
        "2026/12/15",
    )
    assert meta["attachments"][0]["file"] == "cv-125.pdf"
    assert (letter / "package.edxml").read_bytes() == (
        city.root / "sent" / "cv-125.toml.signed.edxml"
    ).read_bytes()
    other = json.loads((city.root / "sent" / "cv-7.edxml.receipt.json").read_text())
    assert (ba_dinh.root / "inbox" / other["document_id"] / "cong-van.pdf").is_file()
    # Acknowledged: nothing is left for Ba Đình, and another step delivers nothing again.
    assert await ba_dinh.client.inbox() == []


async def test_a_refused_package_goes_to_failed_with_the_hubs_reason(
    hub: Hub, agents: Folders
) -> None:
    city = await started(agents(CITY))
    city.drop("outbox", "hong.edxml", b'<?xml version="1.0"?>\n<edXML>\n  <unclosed>\n</edXML>\n')
    # Signed by Ba Đình's key while sent by the city: the hub refuses the signature.
    ba_dinh_account = hub.world.accounts[BA_DINH]
    city.drop(
        "outbox",
        "ky-nham.edxml",
        ba_dinh_account.sign(write_document(document(CITY, (BA_DINH,), number="8"))),
    )
    before = await hub.counts()

    await city.step()

    assert names(city.root / "outbox") == set()
    assert names(city.root / "failed") == {
        "hong.edxml",
        "hong.edxml.reason.txt",
        "ky-nham.edxml",
        "ky-nham.edxml.reason.txt",
    }
    malformed = (city.root / "failed" / "hong.edxml.reason.txt").read_text(encoding="utf-8")
    assert "xml.malformed (HTTP 400)" in malformed
    assert "line 4" in malformed or "line 3" in malformed
    untrusted = (city.root / "failed" / "ky-nham.edxml.reason.txt").read_text(encoding="utf-8")
    assert "signature.untrusted" in untrusted
    assert await hub.counts() == before
    # Settled: never tried again.
    assert await city.adapter.outgoing() == []


async def test_a_bad_metadata_file_fails_locally_and_a_half_written_file_waits(
    hub: Hub, agents: Folders
) -> None:
    city = await started(agents(CITY))
    bad = 'subject = "V/v thiếu số"\nrecipients = ["000.00.31.H26"]\n'
    city.drop("outbox", "thieu.toml", bad.encode())
    (city.root / "outbox" / "dang-ghi.edxml.part").write_bytes(b"<edXML")  # still being copied
    city.drop("outbox", "lac.pdf", tiny_pdf("no metadata yet"))
    secret = city.root / "secret.pem"
    secret.write_bytes(b"-----BEGIN PRIVATE KEY-----")
    (city.root / "outbox" / "khoa.pdf").symlink_to(secret)
    city.drop("outbox", "khoa.toml", LETTER.replace("cv-125.pdf", "khoa.pdf").encode())

    assert await city.adapter.outgoing() == []

    reason = (city.root / "failed" / "thieu.toml.reason.txt").read_text(encoding="utf-8")
    assert "folder.metadata" in reason and "'number' is required" in reason
    assert names(city.root / "outbox") == {"dang-ghi.edxml.part", "lac.pdf"}
    linked = (city.root / "failed" / "khoa.toml.reason.txt").read_text(encoding="utf-8")
    assert "symbolic links are not followed" in linked
    assert secret.is_file()  # the link was moved aside, the file it names is untouched
    assert set((await hub.counts()).values()) == {0}  # nothing reached the hub


async def test_a_recently_modified_file_is_left_until_it_is_quiet(
    hub: Hub, agents: Folders
) -> None:
    city = agents(CITY)
    city.adapter = FolderAdapter(city.root, city.credentials, quiet_seconds=30)
    await started(city)
    path = city.drop("outbox", "moi.edxml", write_document(document(CITY, (BA_DINH,))))
    assert await city.adapter.outgoing() == []
    old = time.time() - 60
    os.utime(path, (old, old))
    (item,) = await city.adapter.outgoing()
    assert item.key == "outbox/moi.edxml"


async def test_a_status_file_is_sent_and_reaches_the_sender(hub: Hub, agents: Folders) -> None:
    city = await started(agents(CITY))
    ba_dinh = await started(agents(BA_DINH))
    city.drop("outbox", "cv-9.edxml", write_document(document(CITY, (BA_DINH,), number="9")))
    await city.step()
    document_id = json.loads((city.root / "sent" / "cv-9.edxml.receipt.json").read_text())[
        "document_id"
    ]
    await ba_dinh.step()
    # The document-management system registered the letter and took its folder away.
    os.replace(ba_dinh.root / "inbox" / document_id, ba_dinh.root / "da-vao-so")
    accepted = f'document = "{document_id}"\ncode = "03"\ndescription = "Đã vào sổ văn bản đến"\n'
    ba_dinh.drop("status", "vao-so.toml", accepted.encode())
    ba_dinh.drop("status", "sai.json", json.dumps({"document": "khong-co", "code": "01"}).encode())

    await ba_dinh.step()

    assert "vao-so.toml.receipt.json" in names(ba_dinh.root / "sent")
    reason = (ba_dinh.root / "failed" / "sai.json.reason.txt").read_text(encoding="utf-8")
    assert "folder.document_unknown" in reason

    await city.step()

    statuses = city.root / "inbox" / "statuses"
    (summary_file,) = statuses.glob("*.json")
    summary = json.loads(summary_file.read_text(encoding="utf-8"))
    assert (summary["document_id"], summary["reporter"], summary["status_code"]) == (
        document_id,
        BA_DINH,
        "03",
    )
    assert summary["description"] == "Đã vào sổ văn bản đến"
    assert summary_file.with_suffix(".edxml").is_file()
    # The city's delivery receipt (Ba Đình acknowledged the document) came too.
    (receipt_file,) = (city.root / "inbox" / "receipts").glob("*.json")
    assert json.loads(receipt_file.read_text())["jws"]

    # The city asks Ba Đình to give the letter back (a recall request, 13).
    recall = f'document = "{document_id}"\ncode = 13\nrecipient = "{BA_DINH}"\n'
    city.drop("status", "thu-hoi.toml", recall.encode())
    await city.step()
    assert "thu-hoi.toml.receipt.json" in names(city.root / "sent")
    await ba_dinh.step()
    (asked,) = (ba_dinh.root / "inbox" / "statuses").glob("*.json")
    assert json.loads(asked.read_text())["status_code"] == "13"


class Crash(BaseException):
    """The process dying between the hub's answer and the filing of the answer."""


class CrashingFolderAdapter(FolderAdapter):
    async def settled(self, item: Outgoing, result: Settled) -> None:
        raise Crash


async def test_a_crash_between_sending_and_filing_sends_the_document_once(
    hub: Hub, agents: Folders
) -> None:
    city = agents(CITY)
    city.adapter = CrashingFolderAdapter(city.root, city.credentials, quiet_seconds=0)
    await started(city)
    city.drop("outbox", "cv-125.pdf", tiny_pdf("Cong van 125"))
    city.drop("outbox", "cv-125.toml", LETTER.encode())
    with pytest.raises(Crash):
        await city.step()
    await city.adapter.close()
    assert names(city.root / "outbox") == {"cv-125.pdf", "cv-125.toml"}  # not filed yet

    # Restarted (a little later: a package built now would carry another timestamp).
    city.adapter = FolderAdapter(city.root, city.credentials, quiet_seconds=0)
    await city.adapter.start()
    await city.step()

    receipt = json.loads((city.root / "sent" / "cv-125.toml.receipt.json").read_text())
    assert receipt["duplicate"] is True
    assert names(city.root / "outbox") == set()
    async with hub.ctx.store.read() as session:
        count = (await session.execute(select(func.count()).select_from(Document))).scalar_one()
    assert count == 1
    assert list((city.root / ".lienthong" / "pending" / "outbox").iterdir()) == []


async def test_a_delivery_that_comes_again_lands_once(hub: Hub, agents: Folders) -> None:
    city = await started(agents(CITY))
    ba_dinh = await started(agents(BA_DINH))
    city.drop("outbox", "cv-5.edxml", write_document(document(CITY, (BA_DINH,), number="5")))
    await city.step()
    # Ba Đình's first adapter leases and fetches the document but dies before acknowledging.
    runner = Runner(ba_dinh.adapter, ba_dinh.client, lease=0.3)
    (item,) = await ba_dinh.client.inbox(lease=0.3)
    received = received_from_item(item, await ba_dinh.client.fetch(item["href"]))
    await ba_dinh.adapter.deliver(received)
    folder = ba_dinh.root / "inbox" / item["document_id"]
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    await asyncio.sleep(0.4)

    step = await runner.run_once()

    assert step.delivered == 1  # the same delivery came again …
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written  # … unchanged
    assert names(ba_dinh.root / "inbox") == {item["document_id"], "statuses", "receipts", "notices"}
    assert await ba_dinh.client.inbox() == []


async def test_a_delivery_taken_out_of_inbox_is_not_handed_over_again(
    hub: Hub, agents: Folders
) -> None:
    city = await started(agents(CITY))
    ba_dinh = await started(agents(BA_DINH))
    city.drop("outbox", "cv-6.edxml", write_document(document(CITY, (BA_DINH,), number="6")))
    await city.step()
    (item,) = await ba_dinh.client.inbox(lease=0.3)
    received = received_from_item(item, await ba_dinh.client.fetch(item["href"]))
    await ba_dinh.adapter.deliver(received)
    # The document-management system registers the letter and moves its folder away at once;
    # then the lease runs out before the adapter's acknowledgement reached the hub.
    registered = ba_dinh.root / "registered"
    os.replace(ba_dinh.root / "inbox" / item["document_id"], registered)
    await asyncio.sleep(0.4)

    assert (await Runner(ba_dinh.adapter, ba_dinh.client, lease=0.3).run_once()).delivered == 1
    assert not (ba_dinh.root / "inbox" / item["document_id"]).exists()  # not handed over twice


async def test_a_status_resent_after_a_crash_reaches_the_sender_once(
    hub: Hub, agents: Folders
) -> None:
    city = await started(agents(CITY))
    ba_dinh = agents(BA_DINH)
    ba_dinh.adapter = CrashingFolderAdapter(ba_dinh.root, ba_dinh.credentials, quiet_seconds=0)
    await started(ba_dinh)
    city.drop("outbox", "cv-4.edxml", write_document(document(CITY, (BA_DINH,), number="4")))
    await city.step()
    document_id = json.loads((city.root / "sent" / "cv-4.edxml.receipt.json").read_text())[
        "document_id"
    ]
    await ba_dinh.step()  # receives the letter (nothing to settle yet)
    ba_dinh.drop("status", "nhan.toml", f'document = "{document_id}"\ncode = "01"\n'.encode())
    with pytest.raises(Crash):
        await ba_dinh.step()
    ba_dinh.adapter.unlock()
    await asyncio.sleep(1.1)  # a status built again now would carry another timestamp

    ba_dinh.adapter = FolderAdapter(ba_dinh.root, ba_dinh.credentials, quiet_seconds=0)
    await ba_dinh.adapter.start()
    await ba_dinh.step()

    receipt = json.loads((ba_dinh.root / "sent" / "nhan.toml.receipt.json").read_text())
    assert receipt["duplicate"] is True
    await city.step()
    assert len(list((city.root / "inbox" / "statuses").glob("*.json"))) == 1
