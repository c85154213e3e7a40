"""The trust store: is an agency's signing certificate one an auditor would accept?

A registered certificate (``agencies.toml``) binds a key to an agency; this module says whether
that certificate may sign *now*:

- it is not self-signed, it is an end-entity certificate for signing (KeyUsage digitalSignature
  or nonRepudiation, not a CA, an ExtendedKeyUsage if any that allows signing);
- it is inside its validity window, at the verification time;
- it chains, through the configured intermediates, to a configured trust anchor (the national
  root, the demo CA): every issuer's signature, validity and CA constraints are checked by
  ``cryptography``'s path builder (:mod:`cryptography.x509.verification`, RFC 5280 profile,
  RSA keys of at least 2048 bits, no SHA-1);
- neither it nor an intermediate is revoked according to the issuer's CRL, and that CRL is
  fresh: CRLs are refreshed on a schedule (:meth:`TrustStore.refresh`, run by the hub's
  scheduler), and when a CRL cannot be refreshed for longer than the grace period, verification
  fails closed (``certificate.revocation_unknown``), as X-Road does with OCSP.

Each refusal has its own code (:class:`~hub.errors.CertificateError`)::

    certificate.self_signed         a self-signed certificate (a root or a home-made one)
    certificate.key_usage           not a signing certificate (a CA, no digitalSignature, …)
    certificate.not_yet_valid       before its notBefore
    certificate.expired             after its notAfter
    certificate.untrusted_issuer    no chain to a trust anchor (or the chain itself is broken)
    certificate.revoked             on its issuer's CRL (or an intermediate is)
    certificate.revocation_unknown  the issuer's CRL is missing or older than the grace period

The hot path does not rebuild chains: a validated chain is cached per certificate (keyed by the
certificate itself, i.e. by its DER bytes, the same identity as its SHA-256 fingerprint) together
with the time window it holds for and the revocation generation it was judged under. A CRL
refresh that changes what is revoked starts a new generation, so every cached chain is judged
again. Only the CRL freshness is checked on every call (a comparison of two times).

The store is pure apart from :meth:`TrustStore.refresh`, which reads CRL files and fetches CRL
URLs; the clock is injectable so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier

from hub.errors import CertificateError
from signing import pki

__all__ = [
    "Chain",
    "CrlStatus",
    "TrustStore",
    "fetch_crl",
]

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

# ExtendedKeyUsage values that allow signing documents; a certificate without the extension
# may sign (RFC 5280 §4.2.1.12), one that restricts itself to other purposes may not.
SIGNING_EKUS: frozenset[ObjectIdentifier] = frozenset(
    {
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ObjectIdentifier("1.3.6.1.5.5.7.3.36"),  # id-kp-documentSigning (RFC 9336)
        ObjectIdentifier("1.3.6.1.4.1.311.10.3.12"),  # Microsoft document signing
    }
)
MAX_CRL_BYTES = 32 * 1024 * 1024
CRL_FETCH_TIMEOUT = 30.0
_CLOCK_SKEW = dt.timedelta(minutes=5)  # a CRL's thisUpdate may be slightly in our future
_CACHE_LIMIT = 10_000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Chain:
    """A validated chain: the certificate, its intermediates, the anchor (in that order)."""

    certificates: tuple[x509.Certificate, ...]
    fingerprint: str
    """Of the end-entity certificate (``sha256:…``)."""

    @property
    def certificate(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def anchor(self) -> x509.Certificate:
        return self.certificates[-1]


@dataclass(frozen=True)
class _Crl:
    """One loaded, signature-checked CRL."""

    source: str
    issuer: x509.Certificate
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked: Mapping[int, dt.datetime]  # serial number → revocation date
    fetched_at: dt.datetime  # last successful refresh


@dataclass(frozen=True)
class CrlStatus:
    """What an operator needs to know about one configured CRL source."""

    source: str
    issuer: str | None
    loaded: bool
    fresh: bool
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    fetched_at: dt.datetime | None
    revoked: int
    error: str | None


@dataclass(frozen=True)
class _Cached:
    chain: Chain
    not_before: dt.datetime
    not_after: dt.datetime  # also the earliest future revocation date in the chain, if any
    generation: int
    crl_issuers: tuple[x509.Certificate, ...]  # whose CRL freshness is checked on every call


@dataclass
class _SourceState:
    crl: _Crl | None = None
    error: str | None = None


@dataclass
class TrustStore:
    """Trust anchors, intermediates and CRLs; validates signing certificates (see module doc).

    *crl_sources* are file paths or ``http(s)://`` URLs; each CRL names its issuer, which must be
    an anchor or an intermediate whose key signed it. With *require_revocation* (the default), a
    certificate whose issuer has no fresh CRL is refused; without it, revocation is checked only
    where a CRL is configured. *grace* is how long after the last successful refresh a CRL is
    still relied on.
    """

    anchors: Sequence[x509.Certificate]
    intermediates: Sequence[x509.Certificate] = ()
    crl_sources: Sequence[str] = ()
    require_revocation: bool = True
    grace: dt.timedelta = dt.timedelta(hours=24)
    clock: Clock = _utcnow
    _states: dict[str, _SourceState] = field(init=False, repr=False)
    _by_issuer: dict[x509.Certificate, _Crl] = field(init=False, repr=False)
    _cache: dict[x509.Certificate, _Cached] = field(init=False, repr=False)
    _generation: int = field(init=False, repr=False, default=0)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _store: verification.Store | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.anchors = tuple(self.anchors)
        self.intermediates = tuple(self.intermediates)
        self.crl_sources = tuple(dict.fromkeys(self.crl_sources))
        if self.grace <= dt.timedelta(0):
            raise ValueError("TrustStore.grace must be positive")
        for cert in (*self.anchors, *self.intermediates):
            if not _is_ca(cert):
                raise ValueError(
                    f"{_describe(cert)} is not a CA certificate (BasicConstraints CA=True); "
                    "only CA certificates can be trust anchors or intermediates"
                )
        self._states = {source: _SourceState() for source in self.crl_sources}
        self._by_issuer = {}
        self._cache = {}
        if self.anchors:
            self._store = verification.Store(list(self.anchors))

    # -- the hot path ----------------------------------------------------------------------

    def check(self, cert: x509.Certificate, at: dt.datetime | None = None) -> Chain:
        """The validated chain of *cert* at time *at* (default: now), or a CertificateError.

        Revocation freshness is always judged now: it is about what the hub knows today.
        """
        now = self.clock()
        at = now if at is None else at.astimezone(dt.UTC)
        cached = self._cache.get(cert)
        if (
            cached is None
            or cached.generation != self._generation
            or not cached.not_before <= at <= cached.not_after
        ):
            cached = self._validate(cert, at)
        for issuer in cached.crl_issuers:
            self._require_fresh(issuer, cached.chain, now)
        return cached.chain

    # -- building and judging a chain (cache miss) -----------------------------------------

    def _validate(self, cert: x509.Certificate, at: dt.datetime) -> _Cached:
        generation = self._generation  # read first: a refresh meanwhile makes this entry stale
        fingerprint = pki.fingerprint(cert)
        what = _describe(cert)
        if cert.issuer == cert.subject and _signed_by(cert, cert):
            raise CertificateError(
                f"The signing certificate {what} is self-signed: it vouches for itself. Register "
                "a certificate issued by a trusted certification authority.",
                code="certificate.self_signed",
            )
        _check_signing_usage(cert, what)
        if at < cert.not_valid_before_utc:
            raise CertificateError(
                f"The signing certificate {what} is not valid yet: its validity starts "
                f"{_iso(cert.not_valid_before_utc)}, the verification time is {_iso(at)}.",
                code="certificate.not_yet_valid",
            )
        if at > cert.not_valid_after_utc:
            raise CertificateError(
                f"The signing certificate {what} expired {_iso(cert.not_valid_after_utc)} "
                f"(verification time {_iso(at)}). Sign with the agency's current certificate, "
                "or register a renewed one.",
                code="certificate.expired",
            )
        chain = Chain(self._build_chain(cert, at, what), fingerprint)
        not_before = max(c.not_valid_before_utc for c in chain.certificates)
        not_after = min(c.not_valid_after_utc for c in chain.certificates)

        crl_issuers: list[x509.Certificate] = []
        for subject, issuer in zip(chain.certificates, chain.certificates[1:], strict=False):
            crl = self._by_issuer.get(issuer)
            if crl is None:
                if self.require_revocation:
                    raise CertificateError(
                        f"The revocation status of {_describe(subject)} is unknown: no CRL of "
                        f"its issuer {_describe(issuer)} is loaded"
                        + self._why_no_crl(issuer)
                        + ". Configure the issuer's CRL in [trust] crls.",
                        code="certificate.revocation_unknown",
                    )
                continue
            crl_issuers.append(issuer)
            revoked_at = crl.revoked.get(subject.serial_number)
            if revoked_at is not None and revoked_at <= at:
                whose = "The signing certificate" if subject is cert else "Its issuing CA"
                raise CertificateError(
                    f"{whose} {_describe(subject)} was revoked {_iso(revoked_at)} "
                    f"(CRL of {_describe(issuer)}, issued {_iso(crl.this_update)}).",
                    code="certificate.revoked",
                )
            if revoked_at is not None:  # revoked after *at*: the chain held until then only
                not_after = min(not_after, revoked_at - dt.timedelta(microseconds=1))
        entry = _Cached(chain, not_before, not_after, generation, tuple(crl_issuers))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache = {}
        self._cache[cert] = entry
        return entry

    def _build_chain(
        self, cert: x509.Certificate, at: dt.datetime, what: str
    ) -> tuple[x509.Certificate, ...]:
        known = (*self.anchors, *self.intermediates)
        if self._store is None:
            raise CertificateError(
                f"The signing certificate {what} cannot be trusted: the hub has no trust "
                "anchors configured ([trust] anchors).",
                code="certificate.untrusted_issuer",
            )
        if not any(c.subject == cert.issuer for c in known):
            raise CertificateError(
                f"The signing certificate {what} was issued by {cert.issuer.rfc4514_string()}, "
                "which is neither a trust anchor nor a known intermediate of this hub. Register "
                "a certificate from a trusted certification authority, or configure that CA in "
                "[trust] anchors / intermediates.",
                code="certificate.untrusted_issuer",
            )
        verifier = (
            verification.PolicyBuilder()
            .store(self._store)
            .time(at)
            .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(cert, list(self.intermediates))
        except verification.VerificationError as exc:
            raise CertificateError(
                f"The signing certificate {what} does not chain to a trust anchor of this hub "
                f"at {_iso(at)}: {exc}.",
                code="certificate.untrusted_issuer",
            ) from exc
        return tuple(verified.chain)

    def _require_fresh(self, issuer: x509.Certificate, chain: Chain, now: dt.datetime) -> None:
        crl = self._by_issuer.get(issuer)
        if crl is not None and now <= crl.fetched_at + self.grace:
            return
        last = f"last refreshed {_iso(crl.fetched_at)}" if crl else "never loaded"
        raise CertificateError(
            f"The revocation status of {_describe(chain.certificate)} is unknown: the CRL of "
            f"{_describe(issuer)} could not be refreshed for longer than the grace period of "
            f"{_duration(self.grace)} ({last}{self._why_no_crl(issuer)}). The hub refuses "
            "signatures it cannot check for revocation; it keeps retrying.",
            code="certificate.revocation_unknown",
        )

    def _why_no_crl(self, issuer: x509.Certificate) -> str:
        errors = [
            f"{source}: {state.error}"
            for source, state in self._states.items()
            if state.error and (state.crl is None or state.crl.issuer == issuer)
        ]
        return f"; last errors: {'; '.join(errors)}" if errors else ""

    # -- CRLs -----------------------------------------------------------------------------

    def apply_crl(self, source: str, data: bytes) -> _Crl:
        """Load CRL bytes fetched from *source*: parse, check the issuer's signature and the
        dates, and make it current. Raises :class:`ValueError` (the old CRL stays) if refused."""
        now = self.clock()
        crl = pki.load_crl(data)
        issuer = next(
            (
                c
                for c in (*self.anchors, *self.intermediates)
                if c.subject == crl.issuer and _crl_signed_by(crl, c)
            ),
            None,
        )
        if issuer is None:
            raise ValueError(
                f"the CRL of {crl.issuer.rfc4514_string()} is not signed by any trust anchor "
                "or intermediate of this hub"
            )
        try:
            usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.crl_sign:
            raise ValueError(f"{_describe(issuer)} may not sign CRLs (KeyUsage without cRLSign)")
        this_update = crl.last_update_utc
        next_update = crl.next_update_utc
        if this_update > now + _CLOCK_SKEW:
            raise ValueError(f"the CRL's thisUpdate {_iso(this_update)} is in the future")
        if next_update is not None and next_update < now:
            raise ValueError(
                f"the CRL is stale: its nextUpdate {_iso(next_update)} has passed (the "
                "publisher did not issue a new one)"
            )
        previous = self._by_issuer.get(issuer)
        if previous is not None and this_update < previous.this_update:
            raise ValueError(
                f"the CRL (thisUpdate {_iso(this_update)}) is older than the one already "
                f"loaded ({_iso(previous.this_update)}); refusing to roll back"
            )
        revoked = {r.serial_number: r.revocation_date_utc for r in crl}
        loaded = _Crl(source, issuer, this_update, next_update, revoked, now)
        with self._lock:
            self._by_issuer[issuer] = loaded
            self._states.setdefault(source, _SourceState()).crl = loaded
            self._states[source].error = None
            if previous is None or previous.revoked != revoked:
                self._generation += 1  # every cached chain is judged again
        return loaded

    def record_failure(self, source: str, error: str) -> None:
        with self._lock:
            self._states.setdefault(source, _SourceState()).error = error

    async def refresh(self) -> list[CrlStatus]:
        """Fetch and apply every configured CRL; failures are kept, logged and retried."""
        for source in self.crl_sources:
            try:
                data = await fetch_crl(source)
                loaded = await asyncio.to_thread(self.apply_crl, source, data)
            except (OSError, ValueError, aiohttp.ClientError, TimeoutError) as exc:
                message = str(exc) or type(exc).__name__
                self.record_failure(source, message)
                log.warning("CRL refresh failed", extra={"crl_source": source, "error": message})
                continue
            log.info(
                "CRL refreshed",
                extra={
                    "crl_source": source,
                    "issuer": loaded.issuer.subject.rfc4514_string(),
                    "revoked": len(loaded.revoked),
                },
            )
        return self.status()

    def uncovered_issuers(self) -> list[x509.Certificate]:
        """Anchors and intermediates that no loaded CRL covers (warned about at start-up)."""
        covered = set(self._by_issuer)
        return [c for c in (*self.anchors, *self.intermediates) if c not in covered]

    def status(self) -> list[CrlStatus]:
        now = self.clock()
        out = []
        for source, state in self._states.items():
            crl = state.crl
            out.append(
                CrlStatus(
                    source=source,
                    issuer=crl.issuer.subject.rfc4514_string() if crl else None,
                    loaded=crl is not None,
                    fresh=crl is not None and now <= crl.fetched_at + self.grace,
                    this_update=crl.this_update if crl else None,
                    next_update=crl.next_update if crl else None,
                    fetched_at=crl.fetched_at if crl else None,
                    revoked=len(crl.revoked) if crl else 0,
                    error=state.error,
                )
            )
        return out


async def fetch_crl(source: str) -> bytes:
    """The bytes of a CRL from a file path or an ``http(s)://`` URL (capped, with a timeout)."""
    if source.startswith(("http://", "https://")):
        timeout = aiohttp.ClientTimeout(total=CRL_FETCH_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(source) as response,
        ):
            if response.status != 200:
                raise ValueError(f"HTTP {response.status} from {source}")
            if (response.content_length or 0) > MAX_CRL_BYTES:
                raise ValueError(f"the CRL at {source} is larger than {MAX_CRL_BYTES} bytes")
            data = await response.content.read(MAX_CRL_BYTES + 1)
            if len(data) > MAX_CRL_BYTES:
                raise ValueError(f"the CRL at {source} is larger than {MAX_CRL_BYTES} bytes")
            return data
    return await asyncio.to_thread(Path(source).read_bytes)


# -- rules for signing certificates ---------------------------------------------------------


def _check_signing_usage(cert: x509.Certificate, what: str) -> None:
    if _is_ca(cert):
        raise CertificateError(
            f"The signing certificate {what} is a CA certificate (BasicConstraints CA=True), "
            "not a certificate for signing documents.",
            code="certificate.key_usage",
        )
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise CertificateError(
            f"The signing certificate {what} has no KeyUsage extension; a signing certificate "
            "must allow digitalSignature or nonRepudiation.",
            code="certificate.key_usage",
        ) from None
    if not (usage.digital_signature or usage.content_commitment) or usage.key_cert_sign:
        allowed = ", ".join(_usages(usage)) or "nothing"
        raise CertificateError(
            f"The signing certificate {what} is not for signing: its KeyUsage allows {allowed}; "
            "digitalSignature or nonRepudiation is required (and keyCertSign is not allowed).",
            code="certificate.key_usage",
        )
    try:
        ekus = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return
    if not ekus & SIGNING_EKUS:
        names = ", ".join(sorted(getattr(e, "_name", e.dotted_string) for e in ekus))
        raise CertificateError(
            f"The signing certificate {what} is restricted to other purposes "
            f"(ExtendedKeyUsage {names}); it may not sign documents.",
            code="certificate.key_usage",
        )


def _usages(usage: x509.KeyUsage) -> list[str]:
    names = [
        ("digital_signature", "digitalSignature"),
        ("content_commitment", "nonRepudiation"),
        ("key_encipherment", "keyEncipherment"),
        ("data_encipherment", "dataEncipherment"),
        ("key_agreement", "keyAgreement"),
        ("key_cert_sign", "keyCertSign"),
        ("crl_sign", "cRLSign"),
    ]
    return [label for attr, label in names if getattr(usage, attr)]


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    try:
        return bool(crl.is_signature_valid(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


# The CA side follows the RFC 5280 / Web PKI profile (BasicConstraints CA, keyCertSign, path
# length, name constraints). The end entity is a document-signing certificate, not a TLS
# client: its extensions are judged above, so the path builder permits them.
_CA_POLICY = verification.ExtensionPolicy.webpki_defaults_ca()
_EE_POLICY = verification.ExtensionPolicy.permit_all()


def _describe(cert: x509.Certificate) -> str:
    try:
        subject = cert.subject.rfc4514_string()
    except ValueError:  # pragma: no cover - malformed subject
        subject = "<unreadable subject>"
    return f"{subject} ({pki.fingerprint(cert)})"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
