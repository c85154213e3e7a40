"""Certificate trust over HTTP: bad certificates refused and nothing stored, CRLs fetched from a
real HTTP server on loopback and refreshed, failing closed past the grace period, legacy SHA-1.

Time is an injected clock: nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from hub.directory import Directory
from hub.edxml.writer import write_document
from hub.server import crl_scheduler
from hub.xmlsafe import parse
from signing import pki
from signing.trust import TrustStore
from signing.xmldsig import DS_NS, EDXML_NS
from tests.integration.test_bad_input import post, refused
from tests.support import CITY, Hub, document, make_cert, sign_unchecked

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def _now() -> None:
    """NOW is when each test starts, not when this module was imported: the certificates the
    fixtures make are valid from a few minutes before they are made."""
    global NOW
    NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: NOW)

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class CrlServer:
    """A CA's CRL distribution point: a real aiohttp server on loopback."""

    server: TestServer
    crl: bytes
    url: str = ""


@pytest.fixture
async def crl_server(hub: Hub) -> AsyncIterator[CrlServer]:
    holder = CrlServer(server=None, crl=pki.issue_crl(hub.world.ca))  # type: ignore[arg-type]

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=holder.crl, content_type="application/pkix-crl")

    app = web.Application()
    app.router.add_get("/ca.crl", serve)
    holder.server = TestServer(app)
    await holder.server.start_server()
    holder.url = str(holder.server.make_url("/ca.crl"))
    yield holder
    await holder.server.close()


def with_agency_certificate(hub: Hub, code: str, issued: pki.Issued, **changes: object) -> None:
    """Register *issued* (only) for *code*, as if agencies.toml said so."""
    agencies = [
        dataclasses.replace(a, certificates=(issued.certificate,), **changes)  # type: ignore[arg-type]
        if a.code == code
        else a
        for a in hub.ctx.directory
    ]
    hub.ctx.directory = Directory(agencies)


@pytest.mark.parametrize(
    ("flaw", "code"),
    [
        ("expired", "certificate.expired"),
        ("self-signed", "certificate.self_signed"),
        ("unknown issuer", "certificate.untrusted_issuer"),
        ("revoked", "certificate.revoked"),
    ],
)
async def test_a_bad_certificate_is_refused_and_nothing_is_stored(
    hub: Hub, flaw: str, code: str
) -> None:
    ca = hub.world.ca
    issued = {
        "expired": lambda: make_cert(
            ca, code=CITY, not_before=NOW - 9 * HOUR, not_after=NOW - HOUR
        ),
        "self-signed": lambda: make_cert(None, code=CITY),
        "unknown issuer": lambda: make_cert(pki.new_ca("Stranger CA", key_type="ec"), code=CITY),
        "revoked": lambda: make_cert(ca, code=CITY),
    }[flaw]()
    with_agency_certificate(hub, CITY, issued)
    if flaw == "revoked":
        store = hub.world.trust_store()
        now = dt.datetime.now(dt.UTC)
        store.apply_crl(
            "test-ca.crl",
            pki.issue_crl(
                ca, [(issued.certificate.serial_number, now)], now=now + dt.timedelta(seconds=1)
            ),
        )
        hub.ctx.trust = store
    body = sign_unchecked(write_document(document(number="401")), issued)
    problem = await refused(hub, post(hub, "/v1/documents", body, CITY), 422, code, actor=CITY)
    assert problem["problems"][0]["path"].endswith("X509Certificate")

    # The dry run says the same, before anything is sent.
    report = await (await hub.http.post("/v1/validate", data=body, headers=hub.as_(CITY))).json()
    assert report["signature"]["checked"] is True
    assert report["signature"]["valid"] is False
    assert report["signature"]["problem"]["code"] == code


async def test_crl_from_a_url_refreshed_then_failing_closed_past_the_grace_period(
    hub: Hub, crl_server: CrlServer
) -> None:
    clock = Clock()
    store = TrustStore(
        anchors=[hub.world.ca.certificate],
        crl_sources=[crl_server.url],
        grace=dt.timedelta(hours=6),
        clock=clock,
    )
    hub.ctx.trust = store
    # Before the first refresh the hub knows nothing of revocation: it fails closed.
    await refused(
        hub,
        hub.http.post("/v1/documents", data=_signed(hub, "402"), headers=hub.as_(CITY)),
        422,
        "certificate.revocation_unknown",
    )
    (status,) = await store.refresh()
    assert status.loaded and status.fresh and status.error is None
    assert status.source == crl_server.url
    assert (await hub.post_document(document(number="403"))).status == 202

    # The CA revokes the city's certificate and publishes a new CRL; the next refresh sees it.
    clock.now = NOW + HOUR
    city = hub.world.accounts[CITY].issued
    assert city is not None
    crl_server.crl = pki.issue_crl(
        hub.world.ca, [(city.certificate.serial_number, clock.now)], now=clock.now
    )
    await store.refresh()
    await refused(
        hub,
        hub.http.post("/v1/documents", data=_signed(hub, "404"), headers=hub.as_(CITY)),
        422,
        "certificate.revoked",
    )

    # The distribution point goes away. Within the grace period the last CRL still holds …
    crl_server.crl = pki.issue_crl(hub.world.ca, now=clock.now)  # (never fetched)
    await crl_server.server.close()
    clock.now = NOW + HOUR + dt.timedelta(hours=5)
    (status,) = await store.refresh()
    assert status.loaded and status.fresh and status.error
    ba_dinh_doc = document(sender="000.00.31.H26", recipients=("000.01.31.H26",), number="405")
    assert (await hub.post_document(ba_dinh_doc)).status == 202
    # … and past it every signature it covers is refused, with a clear code.
    clock.now = NOW + HOUR + dt.timedelta(hours=6, minutes=1)
    (status,) = await store.refresh()
    assert not status.fresh
    body = hub.world.accounts["000.00.31.H26"].sign(
        write_document(
            document(sender="000.00.31.H26", recipients=("000.01.31.H26",), number="406")
        )
    )
    problem = await refused(
        hub,
        hub.http.post("/v1/documents", data=body, headers=hub.as_("000.00.31.H26")),
        422,
        "certificate.revocation_unknown",
    )
    assert "grace period" in problem["detail"]
    assert crl_server.url in problem["detail"]  # the last error names the source


def _signed(hub: Hub, number: str) -> bytes:
    return hub.world.accounts[CITY].sign(write_document(document(number=number)))


async def test_the_scheduler_refreshes_the_crls_on_its_interval(hub: Hub) -> None:
    store = hub.world.trust_store()
    scheduler = crl_scheduler(store, 900)
    (job,) = scheduler.get_jobs()
    assert job.trigger.interval == dt.timedelta(seconds=900)
    assert job.func == store.refresh
    assert job.max_instances == 1


class _LegacySigner(XMLSigner):
    def check_deprecated_methods(self) -> None:  # the SDK's legacy senders still sign SHA-1
        pass


def _sha1_signed(hub: Hub, number: str) -> bytes:
    issued = hub.world.accounts[CITY].issued
    assert issued is not None
    root = parse(write_document(document(number=number))).getroot()
    header = root.find(f"{{{EDXML_NS}}}edXMLEnvelope/{{{EDXML_NS}}}edXMLHeader")
    assert header is not None
    etree.SubElement(header, f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS}).set("Id", "placeholder")
    signed = _LegacySigner(
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    ).sign(root, key=issued.private_key, cert=[issued.certificate])  # type: ignore[arg-type]
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


async def test_sha1_only_from_a_legacy_agency_and_marked_weak(hub: Hub) -> None:
    problem = await refused(
        hub, post(hub, "/v1/documents", _sha1_signed(hub, "407"), CITY), 422, "signature.policy"
    )
    assert (
        "SHA-1 is refused unless the sending agency is explicitly marked legacy"
        in problem["detail"]
    )

    city = hub.world.accounts[CITY].issued
    assert city is not None
    with_agency_certificate(hub, CITY, city, legacy_sha1=True)
    response = await post(hub, "/v1/documents", _sha1_signed(hub, "408"), CITY)
    assert response.status == 202, await response.text()
    doc_id = (await response.json())["document_id"]
    trace = await (
        await hub.http.get(f"/v1/documents/{doc_id}/trace", headers=hub.as_(CITY))
    ).json()
    (validated,) = [e["detail"] for e in trace["events"] if e["kind"] == "validated"]
    assert validated["weak"] is True
    assert validated["signature_method"].endswith("rsa-sha1")
    assert "legacy" in validated["weak_reason"]
    # A SHA-256 signature from the same agency is not weak.
    modern = await hub.send(document(number="409"))
    trace = await (
        await hub.http.get(f"/v1/documents/{modern['document_id']}/trace", headers=hub.as_(CITY))
    ).json()
    (validated,) = [e["detail"] for e in trace["events"] if e["kind"] == "validated"]
    assert validated["weak"] is False
