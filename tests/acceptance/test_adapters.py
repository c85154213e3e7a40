"""Three agencies, each connected through a different adapter, exchange documents and statuses
through a real ``lienthong serve``:

* the city People's Committee (000.00.00.H26) through the **SDK** (``SdkAdapter`` and the runner,
  in this process, over HTTP);
* Ba Đình (000.00.31.H26) through the **folder** adapter (``lienthong adapter folder`` in a
  subprocess);
* Hoàn Kiếm (000.00.32.H26) through the **webhook** receiver: configured for push in
  agencies.toml, the hub POSTs every delivery to the receiver on loopback; it sends through the
  runner's outgoing side.

Each sender sees the statuses 01, 03 and 06 its recipients report."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from adapters.base import Received
from adapters.config import load_config
from adapters.launch import verifier_for
from adapters.runner import Runner
from adapters.sdk import AgencyClient, Credentials, status_about
from adapters.sdk_adapter import SdkAdapter
from adapters.webhook import WebhookAdapter
from hub.edxml.model import DocumentPackage, StatusCode, StatusPackage
from hub.edxml.reader import read_document
from hub.xmlsafe import parse
from tests.acceptance.conftest import Project, free_port, serving
from tests.acceptance.test_folder_adapter_cli import Running, adapter_config, drop
from tests.support import BA_DINH, CITY, HOAN_KIEM, document

pytestmark = pytest.mark.acceptance

DEADLINE = 40.0
PROGRESS = (StatusCode.ARRIVED, StatusCode.ACCEPTED, StatusCode.FINISHED)


def credentials(project: Project, code: str) -> Credentials:
    material = project.demo_dir / "agencies" / code
    return Credentials(
        code,
        (material / "credential").read_text().strip(),
        (material / "key.pem").read_bytes(),
        (material / "cert.pem").read_bytes(),
    )


@pytest.fixture(scope="module")
def webhook_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def hub(project: Project, webhook_port: int) -> Iterator[Project]:
    """The hub, with Hoàn Kiếm switched to push delivery to its webhook receiver."""
    agencies = project.root / "config" / "agencies.toml"
    text, changed = re.subn(
        r'(code = "000\.00\.32\.H26"\n(?:.*\n)*?)delivery = "pull"\n',
        rf'\1delivery = "push"\npush_url = "http://127.0.0.1:{webhook_port}/lienthong/push"\n',
        agencies.read_text(encoding="utf-8"),
        count=1,
    )
    assert changed == 1
    agencies.write_text(text, encoding="utf-8")
    with serving(project) as running:
        yield running


def webhook_config(project: Project, root: Path, port: int) -> Path:
    material = project.demo_dir / "agencies" / HOAN_KIEM
    config = root / "hoan-kiem.toml"
    config.write_text(
        f'hub_url = "{project.url}"\nagency = "{HOAN_KIEM}"\n'
        f'credential_file = "{material / "credential"}"\n'
        f'key = "{material / "key.pem"}"\ncertificate = "{material / "cert.pem"}"\n'
        f'trust_anchors = ["{project.demo_dir / "ca" / "cert.pem"}"]\n\n'
        f'[webhook]\nlisten = "127.0.0.1:{port}"\n'
        f'hub_certificate = "{project.demo_dir / "hub" / "cert.pem"}"\n'
        'inbox = "hoan-kiem-inbox"\nstate_file = "hoan-kiem-state.json"\n',
        encoding="utf-8",
    )
    return config


async def eventually(what: str, check: object) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"not within {DEADLINE:g} s: {what}")
        await asyncio.sleep(0.1)


class Agency:
    """What one in-process agency system has been handed."""

    def __init__(self) -> None:
        self.documents: dict[str, DocumentPackage] = {}  # hub document id → package
        self.statuses: list[tuple[str, str, str]] = []  # (reporter, edXML DocumentId, code)

    async def on_document(self, doc: DocumentPackage, received: Received) -> None:
        self.documents[received.document_id] = doc

    async def on_status(self, status: StatusPackage, received: Received) -> None:
        self.statuses.append(
            (received.sender, status.response_for.document_id, status.status_code.value)
        )

    def codes_from(self, reporter: str, edxml_id: str) -> list[str]:
        return [c for r, d, c in self.statuses if (r, d) == (reporter, edxml_id)]


@pytest.fixture
async def city(hub: Project) -> AsyncIterator[tuple[SdkAdapter, Agency]]:
    """UBND thành phố through the SDK: its runner polls in the background."""
    system = Agency()
    creds = credentials(hub, CITY)
    adapter = SdkAdapter(creds, on_document=system.on_document, on_status=system.on_status)
    stop = asyncio.Event()
    async with AgencyClient(hub.url, creds) as client:
        task = asyncio.create_task(Runner(adapter, client, lease=30).run(stop, wait=1))
        yield adapter, system
        stop.set()
        await task


@pytest.fixture
async def hoan_kiem(
    hub: Project, tmp_path: Path, webhook_port: int
) -> AsyncIterator[tuple[WebhookAdapter, Agency]]:
    """UBND quận Hoàn Kiếm through the webhook receiver; it sends with the runner."""
    config = load_config(webhook_config(hub, tmp_path, webhook_port), "webhook")
    adapter = WebhookAdapter.from_config(config)
    system = Agency()
    written_document, written_status = adapter.on_document, adapter.on_status

    async def on_document(doc: DocumentPackage, received: Received) -> None:
        await written_document(doc, received)  # the folder, as from the command line
        await system.on_document(doc, received)

    async def on_status(status: StatusPackage, received: Received) -> None:
        await written_status(status, received)
        await system.on_status(status, received)

    adapter.on_document, adapter.on_status = on_document, on_status
    receiver = adapter.receiver(verifier_for(config))
    await receiver.start("127.0.0.1", webhook_port)
    stop = asyncio.Event()
    async with AgencyClient(hub.url, config.credentials) as client:
        runner = Runner(adapter, client, receive=False)
        task = asyncio.create_task(runner.run(stop, wait=0.2))
        yield adapter, system
        stop.set()
        await task
    await receiver.stop()


@pytest.fixture
def ba_dinh(hub: Project, tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    """UBND quận Ba Đình through `lienthong adapter folder`."""
    root = tmp_path / "ubnd-ba-dinh"
    running = Running(hub, adapter_config(hub, BA_DINH, root))
    yield running, root
    if running.process.poll() is None:
        running.stop()


async def test_three_agencies_on_three_adapters_exchange_documents_and_statuses(
    hub: Project,
    city: tuple[SdkAdapter, Agency],
    hoan_kiem: tuple[WebhookAdapter, Agency],
    ba_dinh: tuple[Running, Path],
    tmp_path: Path,
) -> None:
    (city_adapter, city_system), (hk_adapter, hk_system) = city, hoan_kiem
    folder, root = ba_dinh
    number = str(time.time_ns() % 10**6)

    # 1. The city (SDK) sends a letter to Ba Đình (folder) and Hoàn Kiếm (webhook).
    letter = document(CITY, (BA_DINH, HOAN_KIEM), number=number)
    sent = await city_adapter.send(letter)
    await eventually("the city's letter is accepted", lambda: city_adapter.outcome(sent.key))
    outcome = city_adapter.outcome(sent.key)
    assert outcome is not None and outcome["accepted"], outcome
    document_id = outcome["receipt"]["document_id"]

    # Ba Đình's system finds it in inbox/, Hoàn Kiếm's had it pushed (and verified).
    folder.until("the letter reaches Ba Đình", (root / "inbox" / document_id).is_dir)
    await eventually(
        "the letter is pushed to Hoàn Kiếm", lambda: document_id in hk_system.documents
    )
    assert hk_system.documents[document_id].document_id == letter.document_id
    inbox = hk_adapter.settings.inbox
    assert any(p.name.endswith(".document.edxml") for p in inbox.iterdir())

    # 2. Both report 01, 03, 06: Ba Đình by dropping status files, Hoàn Kiếm through send().
    for code in PROGRESS:
        drop(
            root / "status",
            f"{number}-{code.value}.json",
            json.dumps({"document": document_id, "code": code.value}).encode(),
        )
        folder.until(
            f"Ba Đình's {code.value} is sent",
            lambda code=code: any((root / "sent").glob(f"{number}-{code.value}.json*")),
        )
        await hk_adapter.send(status_about(HOAN_KIEM, letter, code, "Đang xử lý"))
        await eventually(f"Hoàn Kiếm's {code.value} is sent", lambda: not hk_adapter._state.queued)
    for reporter in (BA_DINH, HOAN_KIEM):
        await eventually(
            f"the city sees 01, 03, 06 from {reporter}",
            lambda reporter=reporter: (
                city_system.codes_from(reporter, letter.document_id) == [c.value for c in PROGRESS]
            ),
        )

    # 3. Ba Đình (folder) answers Hoàn Kiếm (webhook) with a letter of its own, built by the
    #    folder adapter from a PDF and a metadata file; Hoàn Kiếm reports 03 on it.
    pdf_name, meta_name = f"bc-{number}.pdf", f"bc-{number}.toml"
    drop(root / "outbox", pdf_name, b"%PDF-1.4\n% bao cao\n%%EOF\n")
    drop(
        root / "outbox",
        meta_name,
        (
            f'subject = "V/v báo cáo kết quả"\nnumber = "{number}"\nnotation = "UBND-BD"\n'
            f'recipients = ["{HOAN_KIEM}"]\nattachments = ["{pdf_name}"]\n'
        ).encode(),
    )
    receipt_file = root / "sent" / f"{meta_name}.receipt.json"
    folder.until("Ba Đình's letter is sent", receipt_file.exists)
    reply_id = json.loads(receipt_file.read_text())["document_id"]
    await eventually(
        "Ba Đình's letter is pushed to Hoàn Kiếm", lambda: reply_id in hk_system.documents
    )
    reply = hk_system.documents[reply_id]
    assert reply.sender.organ_id == BA_DINH
    accepted = await hk_adapter.send(status_about(HOAN_KIEM, reply, StatusCode.ACCEPTED))
    await eventually("Hoàn Kiếm's 03 is settled", lambda: hk_adapter.outcome(accepted.key))
    assert (hk_adapter.outcome(accepted.key) or {}).get("accepted"), hk_adapter.outcome(
        accepted.key
    )
    statuses = root / "inbox" / "statuses"
    folder.until(
        "Hoàn Kiếm's 03 reaches Ba Đình's folder",
        lambda: any(
            json.loads(p.read_text()).get("status_code") == "03"
            and json.loads(p.read_text()).get("document_id") == reply_id
            for p in statuses.glob("*.json")
        ),
    )

    # 4. Hoàn Kiếm (webhook) writes to the city (SDK), which reports 01 and 06 back.
    to_city = document(HOAN_KIEM, (CITY,), number=f"{number}9", with_pdf=False)
    await hk_adapter.send(to_city)
    await eventually(
        "Hoàn Kiếm's letter reaches the city",
        lambda: any(d.document_id == to_city.document_id for d in city_system.documents.values()),
    )
    for code in (StatusCode.ARRIVED, StatusCode.FINISHED):
        await city_adapter.send(status_about(CITY, to_city, code, "Đã xử lý"))
    await eventually(
        "the city's 01 and 06 are pushed to Hoàn Kiếm",
        lambda: hk_system.codes_from(CITY, to_city.document_id) == ["01", "06"],
    )

    # Every package the webhook wrote is the exact signed bytes the hub holds.
    for path in inbox.glob("*.document.edxml"):
        read_document(parse(path.read_bytes()))
    assert not os.listdir(root / "failed")
