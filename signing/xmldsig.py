"""Sign and verify edXML packages with XMLDSig.

Where the signature goes (and the only shape :func:`verify_package` accepts)::

    edXML
    └─ edXML:edXMLEnvelope
       └─ edXML:edXMLHeader
          ├─ …
          └─ ds:Signature                 enveloped, LAST child of the header
             ├─ ds:SignedInfo
             │  ├─ CanonicalizationMethod  exclusive C14N (C14N 1.0 / 1.1 accepted)
             │  ├─ SignatureMethod         RSA-SHA256 (ECDSA-SHA256/384 for EC P-256/P-384)
             │  └─ ds:Reference URI=""     exactly one; the whole document
             │     ├─ Transforms           enveloped-signature + one C14N, nothing else
             │     └─ DigestMethod         SHA-256
             ├─ ds:SignatureValue
             └─ ds:KeyInfo/ds:X509Data/ds:X509Certificate

Verification is "see what is signed": :attr:`Verified.signed_root` is what the signature covers
(the package minus its Signature and its comments, the very tree whose canonical form was
hashed) and is the tree to read from then on. Before any cryptography, the policy refuses what
a general XMLDSig library would accept but recipients must not see (DESIGN.md §8): a Reference
by Id, several References or Signatures, a Signature outside the envelope header, a
``ds:Object``, unknown transforms, SHA-1. The certificate in ``KeyInfo`` is only a hint: the
registered certificate is pinned, and a ``KeyInfo`` certificate that is not registered is
refused.

Verifying is done by :mod:`signing.xmldsig_core` (lxml's C14N and ``cryptography``), which only
has to handle the one shape left once the policy has spoken: it canonicalises the document once
and SignedInfo once. Signing still goes through signxml's ``XMLSigner``; what it makes is
checked by this module's own verification before it is returned.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from lxml import etree
from signxml.algorithms import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConstructionMethod,
    SignatureMethod,
)
from signxml.exceptions import SignXMLException
from signxml.signer import XMLSigner
from signxml.verifier import XMLVerifier

from hub import xmlsafe
from hub.errors import CertificateError, LienthongError, SignatureError
from signing import pki, xmldsig_core
from signing.xmldsig_core import DS_NS, VerificationFailure

__all__ = [
    "DS_NS",
    "EDXML_NS",
    "CertificateTrust",
    "SignaturePolicy",
    "Verified",
    "sign_package",
    "verify_package",
]

log = logging.getLogger(__name__)

EDXML_NS = "http://www.mic.gov.vn/TBT/QCVN_102_2016"

_E = f"{{{EDXML_NS}}}"
_DS = f"{{{DS_NS}}}"
_NSMAP = {"ds": DS_NS}

ENVELOPED = SignatureConstructionMethod.enveloped.value
C14N_METHODS: frozenset[str] = frozenset(xmldsig_core.C14N_METHODS)

RSA_SHA1 = SignatureMethod.RSA_SHA1.value
SHA1 = DigestAlgorithm.SHA1.value

DEFAULT_SIGNATURE_METHODS: frozenset[str] = frozenset(
    m.value
    for m in (
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.SHA256_RSA_MGF1,  # RSA-PSS
        SignatureMethod.SHA384_RSA_MGF1,
        SignatureMethod.SHA512_RSA_MGF1,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
    )
)
DEFAULT_DIGEST_METHODS: frozenset[str] = frozenset(
    m.value for m in (DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512)
)
DEFAULT_EC_CURVES: frozenset[str] = frozenset({"secp256r1", "secp384r1"})


def _is_sha1(uri: str) -> bool:
    return uri.lower().endswith(("sha1", "sha1-rsa-mgf1"))


class CertificateTrust(Protocol):
    """Whether a registered certificate may sign at a time (:class:`signing.trust.TrustStore`).

    ``check`` raises :class:`~hub.errors.CertificateError` when it may not.
    """

    def check(self, cert: x509.Certificate, at: dt.datetime | None = None) -> object: ...


@dataclass(frozen=True)
class SignaturePolicy:
    """What the hub accepts in a package signature. Frozen, safe defaults.

    ``allow_sha1`` is the one switch for legacy senders (the SDK writes rsa-sha1): it adds
    rsa-sha1 and the SHA-1 digest to whatever else is allowed. Putting a SHA-1 algorithm in the
    sets directly is refused, so SHA-1 can never be let in by accident.
    """

    allow_sha1: bool = False
    signature_methods: frozenset[str] = DEFAULT_SIGNATURE_METHODS
    digest_methods: frozenset[str] = DEFAULT_DIGEST_METHODS
    c14n_methods: frozenset[str] = C14N_METHODS
    min_rsa_bits: int = 2048
    ec_curves: frozenset[str] = DEFAULT_EC_CURVES

    def __post_init__(self) -> None:
        known_sm = {m.value for m in SignatureMethod if not m.name.startswith(("HMAC", "DSA"))}
        known_dm = {m.value for m in DigestAlgorithm}
        for name, values, known in (
            ("signature_methods", self.signature_methods, known_sm),
            ("digest_methods", self.digest_methods, known_dm),
            ("c14n_methods", self.c14n_methods, C14N_METHODS),
        ):
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"SignaturePolicy.{name}: unsupported algorithm(s) {unknown}")
            sha1 = sorted(v for v in values if _is_sha1(v))
            if sha1:
                raise ValueError(
                    f"SignaturePolicy.{name} lists SHA-1 algorithm(s) {sha1}; "
                    "use allow_sha1=True for legacy senders instead"
                )

    @property
    def allowed_signature_methods(self) -> frozenset[str]:
        return self.signature_methods | ({RSA_SHA1} if self.allow_sha1 else set())

    @property
    def allowed_digest_methods(self) -> frozenset[str]:
        return self.digest_methods | ({SHA1} if self.allow_sha1 else set())


@dataclass(frozen=True)
class Verified:
    """The outcome of a successful verification."""

    signed_root: etree._Element
    """ONLY what the signature covers: read the package from this. A copy of the package
    without its Signature and its comments (a same-document reference never covers comments),
    in a document of its own; its elements keep their source line numbers."""
    certificate: x509.Certificate
    """The registered certificate that verified the signature."""
    signature_method: str
    """SignatureMethod algorithm URI."""
    digest_method: str
    """DigestMethod algorithm URI of the single Reference."""
    c14n_method: str = field(default="")
    """CanonicalizationMethod algorithm URI of SignedInfo."""

    @property
    def weak(self) -> bool:
        """SHA-1 was accepted (only ever for an agency marked legacy): say so in the trace."""
        return _is_sha1(self.signature_method) or _is_sha1(self.digest_method)


# -- signing ---------------------------------------------------------------------------------


def sign_package(
    package: bytes,
    key_pem: bytes | PrivateKeyTypes,
    cert_pem: bytes | x509.Certificate,
) -> bytes:
    """Sign an unsigned edXML package; returns the signed bytes (UTF-8, with XML declaration).

    The signature is enveloped, the last child of ``edXML:edXMLHeader``, one Reference
    ``URI=""`` with enveloped-signature + exclusive C14N, SHA-256 digest, RSA-SHA256 (RSA key)
    or ECDSA-SHA256/384 (EC P-256/P-384 key), and the certificate in KeyInfo.

    *key_pem* and *cert_pem* are PEM bytes, or already-loaded objects: loading an RSA key
    spends ~30 ms validating it, so a caller signing many packages loads it once
    (:func:`signing.pki.load_private_key`) and passes the object.

    Refuses (:class:`ValueError`) a package that is not well-formed, already carries a
    signature, or has no ``edXMLHeader``; and a key that does not match the certificate.
    """
    try:
        tree = xmlsafe.parse(package)
    except LienthongError as exc:
        raise ValueError(f"cannot sign: {exc.detail}") from exc
    root = tree.getroot()
    if root.tag != f"{_E}edXML":
        raise ValueError(
            f"cannot sign: the root element is {_name(root)}, expected edXML in {EDXML_NS}"
        )
    header = root.find(f"{_E}edXMLEnvelope/{_E}edXMLHeader")
    if header is None:
        raise ValueError("cannot sign: the package has no edXML:edXMLEnvelope/edXML:edXMLHeader")
    existing = next(root.iter(f"{_DS}Signature"), None)
    if existing is not None:
        raise ValueError(
            f"cannot sign: the package already carries a signature at {_where(existing)}"
        )
    legacy = next(root.iter(f"{_E}Signature"), None)
    if legacy is not None:
        raise ValueError(
            f"cannot sign: the package carries an SDK-style Signature in the edXML namespace at "
            f"{_where(legacy)}; remove it first (it is no XMLDSig signature)"
        )
    for attr in ("Id", "ID", "id"):
        if root.get(attr) is not None:  # signxml would then reference "#<id>" instead of ""
            raise ValueError(f"cannot sign: the edXML root carries an {attr} attribute; remove it")

    cert = cert_pem if isinstance(cert_pem, x509.Certificate) else pki.load_certificate(cert_pem)
    loaded = pki.load_private_key(key_pem) if isinstance(key_pem, bytes) else key_pem
    key, sign_alg = _signing_key(loaded, cert)

    placeholder = etree.Element(f"{_DS}Signature", nsmap=_NSMAP)
    placeholder.set("Id", "placeholder")
    _append_indented(header, placeholder)

    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=sign_alg,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    try:
        signed = signer.sign(root, key=key, cert=[cert])
    except (SignXMLException, ValueError, etree.LxmlError) as exc:
        raise ValueError(f"cannot sign: {exc}") from exc
    out = b'<?xml version="1.0" encoding="UTF-8"?>\n' + etree.tostring(signed, encoding="UTF-8")

    # Self-check: what we emit must pass our own policy and verify with this certificate.
    try:
        verify_package(xmlsafe.parse(out), [cert])
    except SignatureError as exc:
        raise ValueError(f"cannot sign: the signature made would be refused: {exc.detail}") from exc
    return out


def _signing_key(
    key: PrivateKeyTypes, cert: x509.Certificate
) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, SignatureMethod]:
    """The key, checked against the certificate, and the signature method that fits it."""
    public = cert.public_key()
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"cannot sign: a {type(key).__name__} is not an RSA or EC private key")
    if key.public_key().public_bytes(*der) != public.public_bytes(*der):
        raise ValueError(
            "cannot sign: the private key does not belong to the certificate "
            f"({cert.subject.rfc4514_string()})"
        )
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise ValueError(f"cannot sign: the RSA key has {key.key_size} bits; 2048 needed")
        return key, SignatureMethod.RSA_SHA256
    if key.curve.name == "secp256r1":
        return key, SignatureMethod.ECDSA_SHA256
    if key.curve.name == "secp384r1":
        return key, SignatureMethod.ECDSA_SHA384
    raise ValueError(f"cannot sign: EC curve {key.curve.name} is not supported (P-256, P-384)")


def _append_indented(parent: etree._Element, child: etree._Element) -> None:
    """Append *child* as the last child of *parent*, keeping the document's indentation."""
    if len(parent):
        last = parent[-1]
        child_indent, closing = parent.text, last.tail
        if _blank(child_indent) and _blank(closing):
            last.tail, child.tail = child_indent, closing
    parent.append(child)


def _blank(text: str | None) -> bool:
    return text is not None and "\n" in text and not text.strip()


# -- verifying -------------------------------------------------------------------------------


def verify_package(
    tree: etree._ElementTree,
    certificates: Sequence[x509.Certificate],
    policy: SignaturePolicy = SignaturePolicy(),  # frozen, so a safe default
    *,
    at: dt.datetime | None = None,
    trust: CertificateTrust | None = None,
) -> Verified:
    """Verify the package signature against the sender's registered *certificates*.

    *tree* comes from :func:`hub.xmlsafe.parse`. Each registered certificate is tried in turn
    (key rotation), pinned, so that ``KeyInfo`` is never trusted by itself. *at* is the time at
    which certificate validity is judged (default: now; an auditor re-verifying an old package
    passes the submission time). With *trust* (the hub's :class:`signing.trust.TrustStore`),
    each candidate certificate must also chain to a trust anchor, be a signing certificate and
    not be revoked, before any cryptography is spent on it.

    The checks run in a fixed order, so a package gets the code of the first thing wrong: the
    shape and algorithms (``signature.missing``, ``signature.policy``), the binding of
    ``KeyInfo`` to the sender's registered certificates and their key strength
    (``signature.untrusted``, ``signature.policy``), the certificate's trust
    (``certificate.*``), then the signature value and digest (``signature.invalid``).
    """
    root = tree.getroot() if isinstance(tree, etree._ElementTree) else tree
    signature = _find_signature(root)
    shape = _check_policy(root, signature, policy)
    candidates = _candidates(signature, certificates, policy)
    set_aside: list[tuple[x509.Certificate, CertificateError]] = []
    if trust is not None:
        candidates, set_aside = _trusted(candidates, trust, at, signature)
    _check_schema(signature)

    when = _utc(at)
    signature_value = xmlsafe.text_of(signature.find(f"{_DS}SignatureValue"))
    # Both canonical forms are the same whichever certificate is tried: made once, when needed.
    signed_info_c14n: bytes | None = None
    content: tuple[etree._Element, bytes] | None = None
    failures: list[tuple[x509.Certificate, Exception, str]] = []
    for cert in candidates:
        problem = _validity_problem(cert, when)
        if problem is not None:
            failures.append((cert, VerificationFailure("untrusted", problem), "untrusted"))
            continue
        key = _facts(cert).key
        try:
            if signed_info_c14n is None:
                signed_info_c14n = xmldsig_core.canonical_signed_info(
                    shape.signed_info,
                    xmldsig_core.C14N_METHODS[shape.c14n_method],
                    shape.c14n_prefixes,
                )
            # The order is signxml's: the SignatureValue first, so that a package the sender
            # did not sign is reported as such, not as "changed after signing".
            xmldsig_core.verify_signature_value(
                key, shape.signature_method, signature_value, signed_info_c14n
            )
            if not xmldsig_core.key_values_match(signature, key):
                raise VerificationFailure(
                    "input",
                    "KeyInfo holds a KeyValue that is not the certificate's key; remove it or "
                    "make it the signing key",
                )
            if content is None:
                content = xmldsig_core.signed_content(
                    signature,
                    xmldsig_core.C14N_METHODS[shape.transform_c14n],
                    shape.transform_prefixes,
                )
            if not xmldsig_core.digest_matches(content[1], shape.digest_method, shape.digest_value):
                raise VerificationFailure("digest", "digest mismatch")
        except VerificationFailure as exc:
            failures.append((cert, exc, exc.kind))
            continue
        except (ValueError, etree.LxmlError) as exc:  # e.g. lxml's C14NError
            failures.append((cert, exc, "input"))
            continue
        if log.isEnabledFor(logging.DEBUG):  # the fingerprint costs more than the check itself
            log.debug(
                "package signature verified",
                extra={
                    "certificate": pki.fingerprint(cert),
                    "signature_method": shape.signature_method,
                },
            )
        return Verified(
            signed_root=content[0],
            certificate=cert,
            signature_method=shape.signature_method,
            digest_method=shape.digest_method,
            c14n_method=shape.c14n_method,
        )
    raise _rotation_failure(failures, signature, set_aside)


def _utc(at: dt.datetime | None) -> dt.datetime:
    """The verification time in UTC; a naive *at* is taken as UTC (as signxml did)."""
    if at is None:
        return dt.datetime.now(dt.UTC)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _validity_problem(cert: x509.Certificate, at: dt.datetime) -> str | None:
    """Why the pinned certificate cannot have signed at *at*, if it cannot. The trust store
    (when there is one) has judged this already; without one this is the only time check."""
    if at < cert.not_valid_before_utc:
        return (
            f"{_describe(cert)}: certificate is not yet valid at the verification time "
            f"{at.isoformat()}; it is not valid before {cert.not_valid_before_utc.isoformat()}"
        )
    if at > cert.not_valid_after_utc:
        return (
            f"{_describe(cert)}: certificate has expired at the verification time "
            f"{at.isoformat()}; it is not valid after {cert.not_valid_after_utc.isoformat()}"
        )
    return None


class _CertificateFacts(NamedTuple):
    der: bytes
    key: PublicKeyTypes


# What the hot path needs of a registered certificate, worked out once: loading the public key
# costs more than an RSA verification. The registered certificates are long-lived objects, so
# they are looked up by identity: hashing a Certificate (as a dict or lru_cache would) hashes its
# whole parsed structure, microseconds each time. Each entry holds the certificate itself, so
# its id cannot be reused while the entry exists.
_FACTS: dict[int, tuple[x509.Certificate, _CertificateFacts]] = {}
_FACTS_LIMIT = 1024  # certificates change only with the directory (and in tests)


def _facts(cert: x509.Certificate) -> _CertificateFacts:
    hit = _FACTS.get(id(cert))
    if hit is not None and hit[0] is cert:
        return hit[1]
    facts = _CertificateFacts(cert.public_bytes(serialization.Encoding.DER), cert.public_key())
    if len(_FACTS) >= _FACTS_LIMIT:
        _FACTS.clear()
    _FACTS[id(cert)] = (cert, facts)
    return facts


@functools.cache
def _xmldsig_schemas() -> tuple[etree.XMLSchema, ...]:
    """The XMLDSig schema signxml ships (a local file, compiled once; 1.1 includes 1.0)."""
    return tuple(XMLVerifier.schemas())  # type: ignore[no-untyped-call]


def _check_schema(signature: etree._Element) -> None:
    """The Signature element against the XMLDSig schema (signxml's copies of the W3C XSDs,
    compiled once): a structure no schema allows is refused before any of it is read."""
    last: etree.DocumentInvalid | None = None
    for schema in _xmldsig_schemas():
        try:
            schema.assertValid(signature)
        except etree.DocumentInvalid as exc:
            last = exc
        else:
            return
    raise _error(
        "signature.policy",
        f"The Signature element does not match the XMLDSig schema: {last}",
        signature,
    ) from last


def _trusted(
    candidates: list[x509.Certificate],
    trust: CertificateTrust,
    at: dt.datetime | None,
    signature: etree._Element,
) -> tuple[list[x509.Certificate], list[tuple[x509.Certificate, CertificateError]]]:
    """The candidates the trust store accepts, and the others with the reason.

    When none is accepted the first reason is raised: with KeyInfo there is exactly one
    candidate, so the sender learns precisely what is wrong with the certificate it used.
    """
    trusted: list[x509.Certificate] = []
    refused: list[tuple[x509.Certificate, CertificateError]] = []
    for cert in candidates:
        try:
            trust.check(cert, at)
        except CertificateError as exc:
            refused.append((cert, exc))
        else:
            trusted.append(cert)
    if not trusted:
        error = refused[0][1]
        key_info = signature.find(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
        where = key_info if key_info is not None else signature
        error.problems = (xmlsafe.problem_at(where, error.detail),)
        raise error
    return trusted, refused


def _find_signature(root: etree._Element) -> etree._Element:
    signatures = list(root.iter(f"{_DS}Signature"))
    if not signatures:
        others = [el for el in root.iter("{*}Signature") if el.tag != f"{_DS}Signature"]
        if others:
            el = others[0]
            ns = etree.QName(el).namespace
            if ns == EDXML_NS:
                what = (
                    f"a <Signature> element in the edXML namespace ({EDXML_NS}), as the official "
                    "SDK samples write it (unprefixed under the default edXML namespace)"
                )
            elif ns is None:
                what = "a <Signature> element in no namespace"
            else:
                what = f"a <Signature> element in the namespace {ns}"
            raise _error(
                "signature.missing",
                f"The package carries {what} at {_where(el)}. That is no XMLDSig signature to "
                f"any library: the Signature element and everything in it must be in the XMLDSig "
                f'namespace {DS_NS}, e.g. <ds:Signature xmlns:ds="{DS_NS}"> as the last child of '
                "edXML:edXMLHeader. Re-sign the package with an XMLDSig library.",
                el,
            )
        raise _error(
            "signature.missing",
            "The package carries no XMLDSig signature. Sign it with an enveloped "
            f"<ds:Signature> (namespace {DS_NS}) as the last child of edXML:edXMLHeader.",
            root,
        )
    if len(signatures) > 1:
        where = ", ".join(_where(s) for s in signatures)
        raise _error(
            "signature.policy",
            f"The package carries {len(signatures)} XMLDSig Signatures ({where}); exactly one is "
            "accepted, as the last child of edXML:edXMLHeader.",
            signatures[1],
        )
    return signatures[0]


@dataclass(frozen=True)
class _Shape:
    """What the policy check read from a Signature it accepts: all the core needs."""

    signed_info: etree._Element
    signature_method: str
    digest_method: str
    digest_value: str
    c14n_method: str
    """SignedInfo's CanonicalizationMethod."""
    c14n_prefixes: tuple[str, ...]
    transform_c14n: str
    """The Reference's C14N transform (inclusive C14N 1.0 when it has none, XMLDSig §4.4.3.2)."""
    transform_prefixes: tuple[str, ...]


def _check_policy(
    root: etree._Element, signature: etree._Element, policy: SignaturePolicy
) -> _Shape:
    """Refuse every shape the hub does not accept; returns what was read on the way."""
    parent = signature.getparent()
    header_ok = (
        parent is not None
        and parent.tag in (f"{_E}edXMLHeader", f"{_E}edXMLEnvelope")
        and root.tag == f"{_E}edXML"
    )
    if header_ok and parent is not None and parent.tag == f"{_E}edXMLHeader":
        envelope = parent.getparent()
        header_ok = envelope is not None and envelope.tag == f"{_E}edXMLEnvelope"
        parent = envelope
    if header_ok and parent is not None:
        header_ok = parent.getparent() is root
    if not header_ok:
        raise _error(
            "signature.policy",
            f"The signature is at {_where(signature)}; it must be the last child of "
            "edXML:edXMLHeader (/edXML/edXMLEnvelope/edXMLHeader/Signature).",
            signature,
        )

    for node in root.iter(etree.Comment, etree.ProcessingInstruction):
        _refuse_split_text(node)

    for obj in root.iter(f"{_DS}Object"):
        raise _error(
            "signature.policy",
            f"The package carries a ds:Object at {_where(obj)}; content inside a signature is "
            "not accepted (it can hide what was really signed). Remove it.",
            obj,
        )

    signed_infos = signature.findall(f"{_DS}SignedInfo")
    if len(signed_infos) != 1:
        raise _error(
            "signature.policy",
            f"The signature has {len(signed_infos)} ds:SignedInfo elements; exactly one expected.",
            signature,
        )
    signed_info = signed_infos[0]

    c14n_el = signed_info.find(f"{_DS}CanonicalizationMethod")
    c14n = c14n_el.get("Algorithm", "") if c14n_el is not None else ""
    if c14n not in policy.c14n_methods:
        raise _error(
            "signature.policy",
            f"CanonicalizationMethod is {c14n or '(missing)'!r}; expected one of "
            f"{_list(policy.c14n_methods)}.",
            c14n_el if c14n_el is not None else signed_info,
        )

    sm_el = signed_info.find(f"{_DS}SignatureMethod")
    sm = sm_el.get("Algorithm", "") if sm_el is not None else ""
    if sm not in policy.allowed_signature_methods:
        why = (
            " SHA-1 is refused unless the sending agency is explicitly marked legacy."
            if _is_sha1(sm)
            else ""
        )
        raise _error(
            "signature.policy",
            f"SignatureMethod is {sm or '(missing)'!r}.{why} Expected one of "
            f"{_list(policy.allowed_signature_methods)}.",
            sm_el if sm_el is not None else signed_info,
        )

    references = signed_info.findall(f"{_DS}Reference")
    if len(references) != 1:
        raise _error(
            "signature.policy",
            f"The signature has {len(references)} ds:Reference elements; exactly one is "
            'accepted, with URI="" (the whole package).',
            signed_info,
        )
    reference = references[0]
    uri = reference.get("URI")
    if uri != "":
        shown = "no URI attribute" if uri is None else f'URI="{uri}"'
        raise _error(
            "signature.policy",
            f'The signature Reference has {shown}; only URI="" (the whole package, enveloped) '
            "is accepted: a signature over part of the package lets unsigned content through.",
            reference,
        )

    transform_els = reference.findall(f"{_DS}Transforms/{_DS}Transform")
    transforms = [t.get("Algorithm", "") for t in transform_els]
    unexpected = [t for t in transforms if t != ENVELOPED and t not in policy.c14n_methods]
    if unexpected or transforms.count(ENVELOPED) != 1 or len(transforms) > 2:
        raise _error(
            "signature.policy",
            f"The Reference transforms are {transforms}; expected the enveloped-signature "
            f"transform ({ENVELOPED}) plus at most one canonicalization "
            f"({_list(policy.c14n_methods)}).",
            reference,
        )

    dm_el = reference.find(f"{_DS}DigestMethod")
    dm = dm_el.get("Algorithm", "") if dm_el is not None else ""
    if dm not in policy.allowed_digest_methods:
        why = (
            " SHA-1 is refused unless the sending agency is explicitly marked legacy."
            if _is_sha1(dm)
            else ""
        )
        raise _error(
            "signature.policy",
            f"DigestMethod is {dm or '(missing)'!r}.{why} Expected one of "
            f"{_list(policy.allowed_digest_methods)}.",
            dm_el if dm_el is not None else reference,
        )
    c14n_transform = next((t for t in transform_els if t.get("Algorithm") != ENVELOPED), None)
    return _Shape(
        signed_info=signed_info,
        signature_method=sm,
        digest_method=dm,
        digest_value=xmlsafe.text_of(reference.find(f"{_DS}DigestValue")),
        c14n_method=c14n,
        c14n_prefixes=xmldsig_core.inclusive_prefixes(c14n_el),
        transform_c14n=(
            c14n_transform.get("Algorithm", "")
            if c14n_transform is not None
            else xmldsig_core.DEFAULT_REFERENCE_C14N
        ),
        transform_prefixes=xmldsig_core.inclusive_prefixes(c14n_transform),
    )


def _refuse_split_text(node: etree._Element) -> None:
    """A comment or processing instruction *inside* an element's text splits it in two: the
    canonical form drops it, so the signature still verifies, but a recipient whose software
    reads the first text node (``.text``) reads another value (``000.00.00.H<!---->26`` reads
    ``000.00.00.H``). The hub forwards the bytes as received, so such a package is refused.
    Comments between elements (as the SDK writes them) change no value and are accepted."""
    parent = node.getparent()
    if parent is None:
        return
    before = node.getprevious()
    text_before = (before.tail if before is not None else parent.text) or ""
    if not text_before.strip() and not (node.tail or "").strip():
        return
    kind = "comment" if isinstance(node, etree._Comment) else "processing instruction"
    raise _error(
        "signature.policy",
        f"A {kind} inside the text of {_where(parent)} splits its value: the signature does not "
        "cover it, and software that reads the first text node would read "
        f"{text_before.strip()!r}. Remove the {kind}.",
        parent,
    )


def _candidates(
    signature: etree._Element,
    certificates: Sequence[x509.Certificate],
    policy: SignaturePolicy,
) -> list[x509.Certificate]:
    """The registered certificates worth trying, after the KeyInfo and key-strength checks."""
    if not certificates:
        raise _error(
            "signature.untrusted",
            "No signing certificate is registered for the sender; register one before sending.",
            signature,
        )
    candidates = list(certificates)
    cert_els = signature.findall(f"{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate")
    if cert_els:
        offered: list[bytes] = []
        for el in cert_els:
            try:
                offered.append(base64.b64decode("".join((el.text or "").split()), validate=True))
            except (binascii.Error, ValueError) as exc:
                raise _error(
                    "signature.untrusted",
                    "The X509Certificate in the signature's KeyInfo is not valid base64.",
                    el,
                ) from exc
        candidates = [c for c in certificates if _facts(c).der in offered]
        if not candidates:
            raise _error(
                "signature.untrusted",
                f"The certificate in the signature's KeyInfo ({_describe_der(offered[0])}) is not "
                "one of the sender's registered certificates "
                f"({', '.join(_describe(c) for c in certificates)}). Sign with a registered "
                "certificate, or register this one.",
                cert_els[0],
            )

    usable: list[x509.Certificate] = []
    weak: list[str] = []
    for cert in candidates:
        problem = _key_problem(cert, policy)
        if problem:
            weak.append(f"{_describe(cert)}: {problem}")
        else:
            usable.append(cert)
    if not usable:
        raise _error(
            "signature.policy",
            f"The signing certificate's key is not accepted: {'; '.join(weak)}.",
            signature,
        )
    return usable


def _key_problem(cert: x509.Certificate, policy: SignaturePolicy) -> str | None:
    key = _facts(cert).key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < policy.min_rsa_bits:
            return f"RSA key of {key.key_size} bits, at least {policy.min_rsa_bits} required"
        return None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in policy.ec_curves:
            return f"EC curve {key.curve.name}, expected one of {sorted(policy.ec_curves)}"
        return None
    return f"{type(key).__name__} keys are not accepted (RSA or EC only)"


def _rotation_failure(
    failures: list[tuple[x509.Certificate, Exception, str]],
    signature: etree._Element,
    set_aside: Sequence[tuple[x509.Certificate, CertificateError]] = (),
) -> SignatureError:
    tried = "; ".join(
        [f"{_describe(c)}: {_reason(e, kind)}" for c, e, kind in failures]
        + [f"{_describe(c)}: not tried, {e.code}" for c, e in set_aside]
    )
    last = failures[-1][1] if failures else None
    if failures and all(kind == "untrusted" for _, _, kind in failures):
        err = _error(
            "signature.untrusted",
            f"The signing certificate is not valid at the verification time ({tried}).",
            signature,
        )
    elif any(kind == "digest" for _, _, kind in failures):
        err = _error(
            "signature.invalid",
            "The package content does not match its signature: it was changed after signing "
            f"({tried}).",
            signature,
        )
    else:
        err = _error(
            "signature.invalid",
            "The signature does not verify with any registered certificate of the sender "
            f"({tried}).",
            signature,
        )
    err.__cause__ = last
    return err


def _reason(exc: Exception, kind: str) -> str:
    if kind == "digest":
        return "digest mismatch"
    if kind == "signature":
        return "signature value does not verify with this certificate's key"
    return str(exc) or type(exc).__name__


# -- helpers ---------------------------------------------------------------------------------


def _list(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _name(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else str(el.tag)


def _where(el: etree._Element) -> str:
    path, line = xmlsafe.element_path(el), xmlsafe.source_line(el)
    return f"{path} (line {line})" if line else path


def _error(code: str, detail: str, el: etree._Element) -> SignatureError:
    return SignatureError(detail, code=code, problems=[xmlsafe.problem_at(el, detail)])


def _describe(cert: x509.Certificate) -> str:
    try:
        subject = cert.subject.rfc4514_string()
    except ValueError:  # pragma: no cover - malformed subject
        subject = "<unreadable subject>"
    return f"{subject}, {pki.fingerprint(cert)}"


def _describe_der(der: bytes) -> str:
    try:
        return _describe(x509.load_der_x509_certificate(der))
    except ValueError:
        return "an unreadable certificate"
