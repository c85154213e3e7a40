"""Shared test material: a small directory with real keys, packages, and a hub on real SQLite.

Keys are generated once per test session (RSA generation is the slow part); databases are new
for every test.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, SignatureMethod
from signxml.signer import XMLSigner
from sqlalchemy import func, select

from adapters.demo import tiny_pdf
from hub.config import credential_digest
from hub.context import HubContext
from hub.directory import Agency, Directory
from hub.edxml.model import (
    Attachment,
    Code,
    DocumentPackage,
    DocumentType,
    Organization,
    OtherInfo,
    Priority,
    PromulgationInfo,
    ResponseFor,
    StatusCode,
    StatusPackage,
)
from hub.edxml.writer import write_document, write_status
from hub.xmlsafe import parse
from signing.pki import (
    Issued,
    issue_agency_certificate,
    issue_crl,
    issue_hub_certificate,
    new_ca,
)
from signing.receipts import ReceiptSigner
from signing.trust import TrustStore
from signing.xmldsig import DS_NS, EDXML_NS, sign_package
from tracking.models import Blob, Delivery, Document, StatusRecord, TraceEvent

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "interop" / "vxp-sdk-samples"
# The status code each official SDK status sample carries.
SAMPLE_STATUS_CODES = {
    "status.edxml": "01",
    "status_inbox_01.edxml": "01",
    "status_rejection_02.edxml": "02",
    "status_acceptance_03.edxml": "03",
    "status_assignment_04.edxml": "04",
    "status_processing_05.edxml": "05",
    "status_finish_06.edxml": "06",
    "status_cancellation_13.edxml": "13",
    "status_change-acceptance_15.edxml": "15",
    "status_change-rejection_16.edxml": "16",
}

_NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
_DAY = dt.timedelta(days=1)

CITY = "000.00.00.H26"
DEPT = "000.00.01.H26"
BA_DINH = "000.00.31.H26"
HOAN_KIEM = "000.00.32.H26"
PHUC_XA = "000.01.31.H26"
TRUC_BACH = "000.02.31.H26"
GOV_OFFICE = "000.00.00.G22"
AUDITOR = "thanhtra.hanoi"  # an auditor granted the right to read package bodies
TRACE_AUDITOR = "giamsat.hanoi"  # an auditor who reads traces only
ADMIN = "vanhanh.lienthong"
AGENCIES = (CITY, DEPT, BA_DINH, HOAN_KIEM, PHUC_XA, TRUC_BACH, GOV_OFFICE)


@dataclass
class Account:
    code: str
    token: str
    issued: Issued | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sign(self, package: bytes) -> bytes:
        assert self.issued is not None, f"{self.code} has no signing key"
        return sign_package(package, self.issued.key_pem, self.issued.cert_pem)


@dataclass
class World:
    """The test directory: accounts with keys and credentials, and the Directory built on them;
    the CA they chain to (with an empty CRL) and the hub's own key for receipts."""

    ca: Issued
    accounts: dict[str, Account] = field(default_factory=dict)
    hub: Issued | None = None

    def trust_store(self, **kw: Any) -> TrustStore:
        """A trust store anchored at the world's CA, its (empty) CRL loaded."""
        store = TrustStore(anchors=[self.ca.certificate], crl_sources=["test-ca.crl"], **kw)
        store.apply_crl("test-ca.crl", issue_crl(self.ca))
        return store

    def receipt_signer(self) -> ReceiptSigner:
        assert self.hub is not None
        key = self.hub.private_key
        assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
        return ReceiptSigner(key, self.hub.certificate)

    def directory(self) -> Directory:
        agencies = []
        for code, account in self.accounts.items():
            auditor = code in (AUDITOR, TRACE_AUDITOR)
            role = "auditor" if auditor else "admin" if code == ADMIN else "agency"
            agencies.append(
                Agency(
                    code=code,
                    name=f"Agency {code}",
                    role=role,  # type: ignore[arg-type]
                    certificates=(account.issued.certificate,) if account.issued else (),
                    credential_sha256=credential_digest(account.token),
                    read_bodies=code == AUDITOR,
                )
            )
        return Directory(agencies)


def make_world() -> World:
    world = World(ca=new_ca("Test CA"))
    world.hub = issue_hub_certificate(world.ca, hub_id="test-hub", key_type="ec")
    for code in AGENCIES:
        issued = issue_agency_certificate(world.ca, code=code, name=f"Agency {code}")
        world.accounts[code] = Account(code, secrets.token_urlsafe(32), issued)
    for code in (AUDITOR, TRACE_AUDITOR, ADMIN):
        world.accounts[code] = Account(code, secrets.token_urlsafe(32))
    return world


def make_cert(
    issuer: Issued | None,
    *,
    subject: str = "UBND thử nghiệm",
    code: str = "000.00.00.H26",
    not_before: dt.datetime = _NOW - _DAY,
    not_after: dt.datetime = _NOW + 30 * _DAY,
    usage: dict[str, bool] | None = None,
    ca: bool = False,
    eku: list[x509.ObjectIdentifier] | None = None,
) -> Issued:
    """A certificate with the given flaws, signed by *issuer* (self-signed if None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
            x509.NameAttribute(NameOID.USER_ID, code),
        ]
    )
    issuer_name = issuer.certificate.subject if issuer else name
    flags = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    flags.update(usage if usage is not None else {"digital_signature": True})
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**flags), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                issuer.private_key.public_key()  # type: ignore[arg-type]
            ),
            False,
        )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    signer_key = issuer.private_key if issuer else key
    cert = builder.sign(signer_key, hashes.SHA256())  # type: ignore[arg-type]
    return Issued(
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
    )


def sign_unchecked(package: bytes, issued: Issued) -> bytes:
    """*package* signed as sign_package signs it, but without its self-check (which would refuse
    an expired or not-yet-valid certificate): what a sender with such a certificate sends."""
    e = f"{{{EDXML_NS}}}"
    root = parse(package).getroot()
    header = root.find(f"{e}edXMLEnvelope/{e}edXMLHeader")
    assert header is not None
    placeholder = etree.SubElement(header, f"{{{DS_NS}}}Signature", nsmap={"ds": DS_NS})
    placeholder.set("Id", "placeholder")
    signed = XMLSigner(
        signature_algorithm=SignatureMethod.ECDSA_SHA256
        if isinstance(issued.private_key, ec.EllipticCurvePrivateKey)
        else SignatureMethod.RSA_SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    ).sign(root, key=issued.private_key, cert=[issued.certificate])  # type: ignore[arg-type]
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def document(
    sender: str = CITY,
    recipients: tuple[str, ...] = (BA_DINH, HOAN_KIEM),
    *,
    number: str = "12",
    priority: Priority = Priority.NORMAL,
    subject: str = "V/v kiểm thử liên thông văn bản",
    with_pdf: bool = True,
) -> DocumentPackage:
    return DocumentPackage(
        sender=Organization(sender, f"Agency {sender}"),
        recipients=tuple(Organization(r) for r in recipients),
        document_id=f"{sender},2026/11/22,{number}/UBND-VP",
        code=Code(number, "UBND-VP"),
        promulgation=PromulgationInfo("Hà Nội", "2026/11/22"),
        document_type=DocumentType("1", "", "Công văn"),
        subject=subject,
        content=subject,
        other=OtherInfo(priority=priority),
        attachments=(
            (Attachment.from_bytes("att-1", "cong-van.pdf", "application/pdf", tiny_pdf("test")),)
            if with_pdf
            else ()
        ),
    )


def status(
    reporter: str, doc: DocumentPackage, code: StatusCode, description: str = "", *, about: str = ""
) -> StatusPackage:
    """A status about *doc*. For 13 the reporter is the sender and *about* names the recipient."""
    return StatusPackage(
        reporter=Organization(reporter),
        response_for=ResponseFor(
            organ_id=about or doc.sender.organ_id,
            code=f"{doc.code.number}/{doc.code.notation}",
            promulgation_date=doc.promulgation.date,
            document_id=doc.document_id,
        ),
        status_code=code,
        description=description,
        timestamp="2026/11/22 10:00:00",
    )


def signed_document(world: World, doc: DocumentPackage, signer: str | None = None) -> bytes:
    return world.accounts[signer or doc.sender.organ_id].sign(write_document(doc))


def signed_status(world: World, pkg: StatusPackage, signer: str | None = None) -> bytes:
    return world.accounts[signer or pkg.reporter.organ_id].sign(write_status(pkg))


@dataclass
class Hub:
    """A hub on real SQLite behind a real aiohttp server, and the world it serves."""

    ctx: HubContext
    http: TestClient  # type: ignore[type-arg]
    world: World

    def as_(self, code: str) -> dict[str, str]:
        return self.world.accounts[code].headers

    async def post_document(self, doc: DocumentPackage, *, as_: str | None = None) -> Any:
        body = signed_document(self.world, doc)
        return await self.http.post(
            "/v1/documents", data=body, headers=self.as_(as_ or doc.sender.organ_id)
        )

    async def send(self, doc: DocumentPackage) -> dict[str, Any]:
        response = await self.post_document(doc)
        assert response.status == 202, await response.text()
        return dict(await response.json())

    async def report(self, pkg: StatusPackage) -> Any:
        body = signed_status(self.world, pkg)
        return await self.http.post(
            "/v1/status", data=body, headers=self.as_(pkg.reporter.organ_id)
        )

    async def counts(self) -> dict[str, int]:
        """Rows per table: what a refused request must leave unchanged."""
        out = {}
        async with self.ctx.store.read() as session:
            for model in (Document, Delivery, StatusRecord, Blob):
                out[model.__tablename__] = (
                    await session.execute(select(func.count()).select_from(model))
                ).scalar_one()
        return out

    async def events(self) -> list[tuple[str, str, dict[str, Any]]]:
        async with self.ctx.store.read() as session:
            rows = (await session.execute(select(TraceEvent).order_by(TraceEvent.seq))).scalars()
            return [(e.kind, e.actor, json.loads(e.detail)) for e in rows]


def with_recipients(doc: DocumentPackage, *codes: str) -> DocumentPackage:
    return replace(doc, recipients=tuple(Organization(c) for c in codes))


def openapi_validator(component: str) -> Any:
    """A JSON Schema validator for one of hub/openapi.json's component schemas."""
    from importlib import resources

    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    spec = json.loads(resources.files("hub").joinpath("openapi.json").read_text(encoding="utf-8"))
    registry = Registry().with_resource(
        "urn:lienthong:openapi", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:lienthong:openapi#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_matches_openapi(component: str, body: Any) -> None:
    """What the hub answered is what its OpenAPI document promises."""
    errors = sorted(openapi_validator(component).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{component}: " + "; ".join(
        f"{list(e.path)}: {e.message}" for e in errors[:5]
    )


# --- a strict reader of the Prometheus text format (GET /metrics) ------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_VALUE = r"[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf)|NaN"
_SAMPLE = re.compile(rf"({_NAME})(?:\{{({_LABEL}(?:,{_LABEL})*)?\}})? ({_VALUE})")
_HELP = re.compile(rf"# HELP ({_NAME}) .*")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")
_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse_prometheus(text: str) -> tuple[dict[str, str], Samples]:
    """(type per family, samples per sample name); fails on any line the format does not allow,
    a sample before its family's TYPE, or a family declared twice."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    types: dict[str, str] = {}
    samples: Samples = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP"):
            assert _HELP.fullmatch(line), f"line {number}: {line!r}"
            continue
        if line.startswith("# TYPE"):
            match = _TYPE.fullmatch(line)
            assert match, f"line {number}: {line!r}"
            assert match[1] not in types, f"line {number}: {match[1]} declared twice"
            types[match[1]] = match[2]
            continue
        match = _SAMPLE.fullmatch(line)
        assert match, f"line {number} is not a sample: {line!r}"
        name, labels_text, value = match[1], match[2] or "", match[3]
        family = next(
            (
                f
                for f, kind in types.items()
                for suffix in _SUFFIXES[kind]
                if name == f + suffix and (suffix or name == f)
            ),
            None,
        )
        assert family is not None, f"line {number}: {name} has no TYPE before it"
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', labels_text))
        samples.setdefault(name, []).append((labels, float(value.replace("Inf", "inf"))))
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample of *name* with exactly *labels* (0 if absent, as Prometheus reads it)."""
    found = [v for got, v in samples.get(name, []) if got == labels]
    assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
    return found[0] if found else 0.0
