"""Checking a received package as its recipient: who signed it, and that nothing changed since.

The hub verified every package when it was sent, and hands out the exact bytes; a recipient
checks again because the signature, not the hub, is its legal evidence. The checks are the
hub's own (:func:`signing.xmldsig.verify_package`, the same policy, the same trust store): no
XMLDSig is reimplemented here.

Which certificates may sign for an agency:

* **pinned** certificates, when the agency system knows them (a copy of the directory), or else
* the certificate in the signature's ``KeyInfo``, if it names that agency: an agency certificate
  carries the agency's code in its subject ``UID`` (``signing.pki``). It must chain to one of the
  trust anchors the agency configured, be a signing certificate and be valid (and not revoked,
  where CRLs are given).

The signed ``From`` (a document) or reporter (a status) must be that agency, and only the
signed content is read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree

from adapters.base import Received
from hub.edxml.model import DocumentPackage, StatusPackage
from hub.edxml.reader import read_document, read_status
from hub.edxml.schema import detect_kind
from hub.errors import LienthongError, SignatureError
from hub.xmlsafe import parse
from signing.pki import load_certificates
from signing.trust import TrustStore
from signing.xmldsig import DS_NS, verify_package

__all__ = ["PackageVerifier", "VerifiedPackage"]


@dataclass(frozen=True)
class VerifiedPackage:
    """A received package whose signature verified; read from the signed content only."""

    kind: str  # "document" | "status"
    sender: str  # the signed From (document) or reporter (status)
    certificate: x509.Certificate
    document: DocumentPackage | None = None
    status: StatusPackage | None = None


def _uid(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    return str(values[0].value).strip() if values else ""


def _offered(root: etree._Element) -> list[x509.Certificate]:
    """The certificates in the signature's KeyInfo, unparseable ones left out."""
    out = []
    for el in root.iter(f"{{{DS_NS}}}X509Certificate"):
        try:
            out.append(
                x509.load_der_x509_certificate(base64.b64decode("".join((el.text or "").split())))
            )
        except (binascii.Error, ValueError):
            continue
    return out


def _claimed_sender(tree: etree._ElementTree) -> tuple[str, str]:
    """(kind, code) as the package claims them, before verification: only to pick the
    certificates; the signed content is checked against them afterwards."""
    kind = "status" if detect_kind(tree) == "status" else "document"
    if kind == "status":
        return kind, read_status(tree).reporter.organ_id
    return kind, read_document(tree).sender.organ_id


class PackageVerifier:
    """Verifies received packages against the agency's trust anchors (and pinned
    certificates). Thread-safe; make one per agency and keep it."""

    def __init__(
        self, trust: TrustStore, pinned: Mapping[str, Sequence[x509.Certificate]] | None = None
    ) -> None:
        self.trust = trust
        self.pinned = {code: tuple(certs) for code, certs in (pinned or {}).items()}

    @classmethod
    def from_files(
        cls, anchors: Sequence[Path], pinned: Mapping[str, Sequence[Path]] | None = None
    ) -> PackageVerifier:
        """Anchors (PEM files); revocation is checked only where the caller adds CRLs to
        ``trust`` (``TrustStore.apply_crl``), since an agency system may have none."""
        roots = [cert for path in anchors for cert in load_certificates(path.read_bytes())]
        trust = TrustStore(anchors=roots, require_revocation=False)
        certs = {
            code: [c for p in paths for c in load_certificates(p.read_bytes())]
            for code, paths in (pinned or {}).items()
        }
        return cls(trust, certs)

    def verify(self, package: bytes) -> VerifiedPackage:
        """The verified package, or a :class:`hub.errors.LienthongError` saying what is wrong
        (``xml.*``, ``schema.invalid``, ``signature.*``, ``certificate.*``)."""
        tree = parse(package)
        kind, claimed = _claimed_sender(tree)
        candidates = self.pinned.get(claimed) or tuple(
            c for c in _offered(tree.getroot()) if _uid(c) == claimed
        )
        if not candidates:
            raise SignatureError(
                f"No certificate of {claimed} signs this package: none is pinned for it and the "
                "signature's KeyInfo carries none whose subject UID names it.",
                code="signature.untrusted",
            )
        verified = verify_package(tree, candidates, trust=self.trust)
        signed, cert = verified.signed_root, verified.certificate
        if kind == "status":
            status = read_status(signed)
            result = VerifiedPackage(kind, status.reporter.organ_id, cert, status=status)
        else:
            document = read_document(signed)
            result = VerifiedPackage(kind, document.sender.organ_id, cert, document=document)
        if result.sender != claimed:  # the unsigned reading disagreed with the signed one
            raise SignatureError(
                f"The signed sender is {result.sender}, not {claimed}.",
                code="signature.untrusted",
            )
        return result

    def problem(self, received: Received) -> str | None:
        """Why *received* must be refused, or None: its package verifies and comes from the
        agency the hub says it comes from. Used by the runner and the webhook receiver."""
        if received.package is None:
            return "no package was received"
        try:
            verified = self.verify(received.package)
        except LienthongError as exc:
            return f"{exc.code}: {exc}"
        if received.sender and verified.sender != received.sender:
            return f"signed by {verified.sender}, but the hub says it comes from {received.sender}"
        return None
