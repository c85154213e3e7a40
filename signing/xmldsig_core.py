"""The XMLDSig verification core: lxml's C14N and ``cryptography``, for the one shape the hub takes.

:mod:`signing.xmldsig` checks the shape first (one enveloped ``ds:Signature`` in the envelope
header, one ``Reference URI=""`` with the enveloped-signature transform and at most one C14N,
no ``ds:Object``, allowed algorithms) and then calls these pure functions, which do the three
things a verification needs and nothing else:

- :func:`canonical_signed_info`: the canonical form of ``ds:SignedInfo`` *in its document
  context* (what the SignatureValue signs);
- :func:`verify_signature_value`: that value checked with the pinned certificate's public key;
- :func:`signed_content`: the document as the Reference covers it (the document minus the
  Signature element and minus comments), as a tree of its own and in canonical form, and
  :func:`digest_matches` to compare its digest with the DigestValue in constant time.

signxml, which the hub used before, serialised the tree four times and re-parsed it six times
per verification; here the document is copied once (in C, by lxml) and canonicalised once, and
SignedInfo once. The copy is the signed content the hub reads from then on: it is exactly the
tree that was hashed, so nothing outside the signature can be read from it.

Same-document semantics (XMLDSig 1.1 §4.4.3.3): ``URI=""`` is the whole document, processing
instructions outside the root element included, **minus comments**, whatever the C14N transform
says about comments; libxmlsec1 does the same (the interop tests hold both to it).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree

__all__ = [
    "C14N_METHODS",
    "DIGEST_METHODS",
    "DS_NS",
    "SIGNATURE_METHODS",
    "Canonicalization",
    "SignatureAlgorithm",
    "VerificationFailure",
    "canonical_signed_info",
    "digest_matches",
    "signed_content",
    "verify_signature_value",
]

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_DS = f"{{{DS_NS}}}"
_DSIG11 = "{http://www.w3.org/2009/xmldsig11#}"
_EXC_C14N_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_XML_NS = "{http://www.w3.org/XML/1998/namespace}"


class VerificationFailure(Exception):
    """The signature does not verify. ``kind`` says why, for the caller's error code:
    ``"digest"`` (the content changed after signing), ``"signature"`` (the SignatureValue does
    not verify with this key), ``"input"`` (the signature or the content cannot be processed;
    the message says what) or, from :mod:`signing.xmldsig`, ``"untrusted"`` (the pinned
    certificate is not valid at the verification time)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# -- algorithms ------------------------------------------------------------------------------


class KeyFamily(Enum):
    RSA = "RSA PKCS#1 v1.5"
    RSA_PSS = "RSA-PSS"
    ECDSA = "ECDSA"


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A SignatureMethod: the key family and the hash it signs with."""

    family: KeyFamily
    hash: type[hashes.HashAlgorithm]


_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_MORE07 = "http://www.w3.org/2007/05/xmldsig-more#"
_MORE21 = "http://www.w3.org/2021/04/xmldsig-more#"

# Every SignatureMethod a SignaturePolicy can let in (RFC 6931 / RFC 9231 identifiers). The
# *-rsa-MGF1 methods are RSA-PSS with MGF1 over the same hash and a salt as long as the hash
# (RFC 6931 §2.3.10): they carry no parameters, so there is nothing else to read.
SIGNATURE_METHODS: Mapping[str, SignatureAlgorithm] = MappingProxyType(
    {
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1": SignatureAlgorithm(
            KeyFamily.RSA, hashes.SHA1
        ),
        f"{_MORE}rsa-sha224": SignatureAlgorithm(KeyFamily.RSA, hashes.SHA224),
        f"{_MORE}rsa-sha256": SignatureAlgorithm(KeyFamily.RSA, hashes.SHA256),
        f"{_MORE}rsa-sha384": SignatureAlgorithm(KeyFamily.RSA, hashes.SHA384),
        f"{_MORE}rsa-sha512": SignatureAlgorithm(KeyFamily.RSA, hashes.SHA512),
        f"{_MORE07}sha224-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA224),
        f"{_MORE07}sha256-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA256),
        f"{_MORE07}sha384-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA384),
        f"{_MORE07}sha512-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA512),
        f"{_MORE07}sha3-224-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA3_224),
        f"{_MORE07}sha3-256-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA3_256),
        f"{_MORE07}sha3-384-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA3_384),
        f"{_MORE07}sha3-512-rsa-MGF1": SignatureAlgorithm(KeyFamily.RSA_PSS, hashes.SHA3_512),
        f"{_MORE}ecdsa-sha224": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA224),
        f"{_MORE}ecdsa-sha256": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA256),
        f"{_MORE}ecdsa-sha384": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA384),
        f"{_MORE}ecdsa-sha512": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA512),
        f"{_MORE21}ecdsa-sha3-224": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA3_224),
        f"{_MORE21}ecdsa-sha3-256": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA3_256),
        f"{_MORE21}ecdsa-sha3-384": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA3_384),
        f"{_MORE21}ecdsa-sha3-512": SignatureAlgorithm(KeyFamily.ECDSA, hashes.SHA3_512),
    }
)

# DigestMethod URI -> hashlib name.
DIGEST_METHODS: Mapping[str, str] = MappingProxyType(
    {
        "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
        f"{_MORE}sha224": "sha224",
        "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
        f"{_MORE}sha384": "sha384",
        "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
        f"{_MORE07}sha3-224": "sha3_224",
        f"{_MORE07}sha3-256": "sha3_256",
        f"{_MORE07}sha3-384": "sha3_384",
        f"{_MORE07}sha3-512": "sha3_512",
    }
)


@dataclass(frozen=True)
class Canonicalization:
    """A C14N method as lxml runs it. ``version`` only matters for SignedInfo, a document
    subset: C14N 1.0 and 1.1 render a whole document identically."""

    exclusive: bool
    with_comments: bool
    version: str  # "1.0" or "1.1"


_C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_C14N_1_1 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_METHODS: Mapping[str, Canonicalization] = MappingProxyType(
    {
        _C14N_1_0: Canonicalization(exclusive=False, with_comments=False, version="1.0"),
        f"{_C14N_1_0}#WithComments": Canonicalization(False, with_comments=True, version="1.0"),
        _C14N_1_1: Canonicalization(exclusive=False, with_comments=False, version="1.1"),
        f"{_C14N_1_1}#WithComments": Canonicalization(False, with_comments=True, version="1.1"),
        _EXC_C14N_NS: Canonicalization(exclusive=True, with_comments=False, version="1.0"),
        f"{_EXC_C14N_NS}WithComments": Canonicalization(True, with_comments=True, version="1.0"),
    }
)
# What a Reference without a C14N transform is turned into octets with (XMLDSig §4.4.3.2).
DEFAULT_REFERENCE_C14N = _C14N_1_0


def inclusive_prefixes(method_el: etree._Element | None) -> tuple[str, ...]:
    """The ``InclusiveNamespaces PrefixList`` of an exclusive C14N method or transform."""
    if method_el is None:
        return ()
    found = method_el.find(f"{{{_EXC_C14N_NS}}}InclusiveNamespaces")
    return tuple(found.get("PrefixList", "").split()) if found is not None else ()


# -- canonical forms -------------------------------------------------------------------------


def canonical_signed_info(
    signed_info: etree._Element, method: Canonicalization, prefixes: tuple[str, ...] = ()
) -> bytes:
    """The canonical form of *signed_info* as a document subset, which its SignatureValue signs.

    It is canonicalised as a copy whose apex declares every namespace in scope at SignedInfo
    (``nsmap`` holds the inherited ones too), which is what inclusive C14N renders on a subset's
    apex; exclusive C14N renders only what is used, so the declarations change nothing there.
    Two easier ways are wrong: canonicalising the element in place renders a spurious
    ``xmlns=""`` on the grandchildren of an unprefixed SignedInfo (the SDK's legacy form;
    signxml issue #275), and a plain ``deepcopy`` keeps only the declarations the copy uses.
    Inclusive C14N also carries the ``xml:`` attributes of the ancestors onto the apex
    (C14N 1.0: all of them; 1.1: ``xml:lang`` and ``xml:space``).
    """
    # (lxml-stubs do not know the None key, i.e. the default namespace, of an nsmap)
    apex = etree.Element(signed_info.tag, nsmap=signed_info.nsmap)  # type: ignore[arg-type]
    for name, value in signed_info.attrib.items():
        apex.set(name, value)
    if not method.exclusive:
        for name, value in _inherited_xml_attributes(signed_info, method).items():
            apex.set(name, value)
    apex.text = signed_info.text
    apex.extend(list(copy.deepcopy(signed_info)))  # one copy; the children keep their tails
    return etree.tostring(
        apex,
        method="c14n",
        exclusive=method.exclusive,
        with_comments=method.with_comments,
        inclusive_ns_prefixes=list(prefixes) or None,
    )


def _inherited_xml_attributes(el: etree._Element, method: Canonicalization) -> dict[str, str]:
    inherited: dict[str, str] = {}
    ancestor = el.getparent()
    while ancestor is not None:
        for raw_name, raw_value in ancestor.attrib.items():
            name, value = str(raw_name), str(raw_value)
            if not name.startswith(_XML_NS) or name in inherited or name in el.attrib:
                continue
            local = name[len(_XML_NS) :]
            if method.version == "1.1" and local == "base":
                # C14N 1.1 joins xml:base values along the path (RFC 3986 resolution); no
                # package the hub has seen needs it, so say so rather than guess.
                raise VerificationFailure(
                    "input",
                    "an xml:base attribute above SignedInfo under C14N 1.1 is not supported",
                )
            if method.version == "1.1" and local not in ("lang", "space"):
                continue  # C14N 1.1 does not inherit xml:id
            inherited[name] = value
        ancestor = ancestor.getparent()
    return inherited


def signed_content(
    signature: etree._Element, method: Canonicalization, prefixes: tuple[str, ...] = ()
) -> tuple[etree._Element, bytes]:
    """What a ``Reference URI=""`` with the enveloped-signature transform covers, as a root
    element of its own and in canonical form (the octets to digest).

    The whole document of *signature* is copied, then the Signature element is removed from
    the copy: only the element, its tail text stays where it was (the enveloped transform
    removes the Signature's subtree, not the text node after it). Comments are removed too: a
    same-document reference never covers them, so they must not be readable from the signed
    content either. The original tree is not touched.
    """
    content = copy.deepcopy(signature.getroottree())
    root = content.getroot()
    # The shape checks found exactly one ds:Signature; it is the same one in the copy.
    copied = next(root.iter(f"{_DS}Signature"))
    _remove_keeping_tail(copied)
    for node in list(root.iter(etree.Comment, etree.Entity)):
        if isinstance(node, etree._Entity):
            # Only a leniently parsed tree has these (hub.xmlsafe.parse refuses DTDs); lxml's
            # C14N would fail with no hint, and the value it stands for is unknown anyway.
            raise VerificationFailure(
                "input",
                f"the package holds an unexpanded entity reference {node.text} (line "
                f"{node.sourceline}); entities are not accepted",
            )
        _remove_keeping_tail(node)
    octets = etree.tostring(
        content,
        method="c14n",
        exclusive=method.exclusive,
        with_comments=False,
        inclusive_ns_prefixes=list(prefixes) or None,
    )
    return root, octets


def _remove_keeping_tail(node: etree._Element) -> None:
    """Remove *node* from its parent; lxml would remove its tail text with it, so the tail is
    first joined to the text before it."""
    parent = node.getparent()
    if parent is None:  # pragma: no cover - only ever called on a node inside the root
        return
    if node.tail:
        previous = node.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + node.tail
        else:
            parent.text = (parent.text or "") + node.tail
    parent.remove(node)


def digest_matches(octets: bytes, digest_method: str, digest_value: str) -> bool:
    """Whether the DigestValue (base64 text) is the digest of *octets*, compared in constant
    time. Raises :class:`VerificationFailure` when the DigestValue is not base64."""
    expected = _b64("DigestValue", digest_value)
    actual = hashlib.new(DIGEST_METHODS[digest_method], octets).digest()
    return hmac.compare_digest(actual, expected)


# -- the signature value ---------------------------------------------------------------------


def verify_signature_value(
    key: PublicKeyTypes, signature_method: str, signature_value: str, signed_info_c14n: bytes
) -> None:
    """Check the SignatureValue (base64 text) over the canonical SignedInfo with *key*.

    Raises :class:`VerificationFailure` (kind ``"signature"``) when it does not verify, or
    (kind ``"input"``) when the value cannot be one for this method and key.
    """
    algorithm = SIGNATURE_METHODS[signature_method]
    value = _b64("SignatureValue", signature_value)
    try:
        if algorithm.family is KeyFamily.ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise _wrong_key(algorithm, key)
            key.verify(_ecdsa_der(value, key.curve), signed_info_c14n, ec.ECDSA(algorithm.hash()))
            return
        if not isinstance(key, rsa.RSAPublicKey):
            raise _wrong_key(algorithm, key)
        digest = algorithm.hash()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if algorithm.family is KeyFamily.RSA
            else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
        )
        key.verify(value, signed_info_c14n, pad, digest)
    except InvalidSignature as exc:
        raise VerificationFailure("signature", "the SignatureValue does not verify") from exc


def _ecdsa_der(value: bytes, curve: ec.EllipticCurve) -> bytes:
    """XMLDSig carries an ECDSA signature as the raw octets r||s, each as long as the curve's
    order (RFC 4050 / XMLDSig 1.1 §6.4.3); ``cryptography`` takes DER. Any other length is
    refused, not padded: it is not an XMLDSig ECDSA value (a DER one, say)."""
    size = (curve.key_size + 7) // 8
    if len(value) != 2 * size:
        raise VerificationFailure(
            "input",
            f"an ECDSA {curve.name} SignatureValue is r||s, {2 * size} bytes; this one has "
            f"{len(value)}",
        )
    r = int.from_bytes(value[:size], "big")
    s = int.from_bytes(value[size:], "big")
    return encode_dss_signature(r, s)


def _wrong_key(algorithm: SignatureAlgorithm, key: PublicKeyTypes) -> VerificationFailure:
    return VerificationFailure(
        "input",
        f"the SignatureMethod is {algorithm.family.value}, the certificate holds "
        f"a {type(key).__name__.removeprefix('_')} key",
    )


def _b64(what: str, text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise VerificationFailure("input", f"the {what} is not valid base64") from exc


# -- KeyInfo key values ----------------------------------------------------------------------


def key_values_match(signature: etree._Element, key: PublicKeyTypes) -> bool:
    """Whether every ``KeyValue`` / ``DEREncodedKeyValue`` in KeyInfo is *key*.

    The registered certificate is pinned, so KeyInfo never decides the key; but a KeyInfo that
    names another key next to it is ambiguous for recipients, and is refused (as signxml did).
    """
    key_info = signature.find(f"{_DS}KeyInfo")
    if key_info is None:
        return True
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    for el in key_info.iterfind(f"{_DSIG11}DEREncodedKeyValue"):
        try:
            offered = serialization.load_der_public_key(_b64("DEREncodedKeyValue", el.text or ""))
        except ValueError:
            return False
        if offered.public_bytes(*der) != key.public_bytes(*der):
            return False
    return all(_key_value_is(el, key) for el in key_info.iterfind(f"{_DS}KeyValue"))


def _key_value_is(key_value: etree._Element, key: PublicKeyTypes) -> bool:
    rsa_value = key_value.find(f"{_DS}RSAKeyValue")
    if rsa_value is not None:
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        numbers = key.public_numbers()
        return _integer(rsa_value, f"{_DS}Modulus") == numbers.n and (
            _integer(rsa_value, f"{_DS}Exponent") == numbers.e
        )
    ec_value = key_value.find(f"{_DSIG11}ECKeyValue")
    if ec_value is not None:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        point = ec_value.findtext(f"{_DSIG11}PublicKey") or ""
        try:
            raw = _b64("ECKeyValue/PublicKey", point)
        except VerificationFailure:
            return False
        return raw == key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    return False  # DSAKeyValue or anything else: not the certificate's key


def _integer(parent: etree._Element, tag: str) -> int | None:
    text = parent.findtext(tag)
    if text is None:
        return None
    try:
        return int.from_bytes(_b64(tag, text), "big")
    except VerificationFailure:
        return None
