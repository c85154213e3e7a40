"""A certification authority kept in a folder: the demo CA, or one for a test deployment.

Layout (what ``lienthong keys init-ca`` makes and ``keys issue`` / ``keys rotate`` /
``keys revoke`` use)::

    DIR/key.pem     the CA's private key (mode 0600)
    DIR/cert.pem    the CA certificate: give it to the hub as a trust anchor ([trust] anchors)
    DIR/crl.pem     the CA's current CRL: give it to the hub as a CRL source ([trust] crls)

and for each agency a folder with ``key.pem`` (0600) and ``cert.pem``; after a rotation the
previous pair stays beside them as ``key-<serial>.pem`` / ``cert-<serial>.pem``, so the old
certificate can stay registered while the agency's systems switch to the new key.

Production agencies get their certificates from the national CA; this is development and
demo tooling. Nothing here prints or logs a private key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from signing import pki
from signing.keyfiles import write_file

__all__ = [
    "CRL_DAYS",
    "AgencyFiles",
    "init_ca",
    "issue_agency",
    "load_ca",
    "publish_crl",
    "revoked_entries",
    "rotate_agency",
]

CRL_DAYS = 7


@dataclass(frozen=True)
class AgencyFiles:
    key: Path
    certificate: Path
    issued: pki.Issued
    archived_certificate: Path | None = None  # after a rotation: the previous certificate


def init_ca(
    folder: Path, name: str, *, key_type: pki.KeyType = "rsa", valid_days: int = 3650
) -> pki.Issued:
    """Create a CA in *folder* (key, certificate and an empty CRL). Refuses to replace one."""
    if (folder / "key.pem").exists() or (folder / "cert.pem").exists():
        raise FileExistsError(f"{folder} already holds a CA (key.pem / cert.pem)")
    ca = pki.new_ca(name, key_type=key_type, valid_days=valid_days)
    write_file(folder / "key.pem", ca.key_pem, secret=True)
    write_file(folder / "cert.pem", ca.cert_pem)
    publish_crl(folder, ca)
    return ca


def load_ca(folder: Path) -> pki.Issued:
    for name in ("key.pem", "cert.pem"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: is {folder} a CA folder?")
    ca = pki.Issued((folder / "key.pem").read_bytes(), (folder / "cert.pem").read_bytes())
    pki.load_private_key(ca.key_pem)  # readable, or a clear ValueError
    return ca


def revoked_entries(folder: Path, ca: pki.Issued) -> list[tuple[int, dt.datetime]]:
    """The entries of the CA's current CRL (none if it has none yet)."""
    path = folder / "crl.pem"
    if not path.exists():
        return []
    crl = pki.load_crl(path.read_bytes())
    if crl.issuer != ca.certificate.subject:
        raise ValueError(f"{path} is not a CRL of {ca.certificate.subject.rfc4514_string()}")
    return [(r.serial_number, r.revocation_date_utc) for r in crl]


def publish_crl(
    folder: Path,
    ca: pki.Issued,
    revoke: tuple[x509.Certificate, ...] = (),
    *,
    valid_days: int = CRL_DAYS,
) -> Path:
    """Re-issue ``crl.pem`` with its current entries plus *revoke*; returns its path."""
    for cert in revoke:
        if cert.issuer != ca.certificate.subject:
            raise ValueError(
                f"{cert.subject.rfc4514_string()} was not issued by this CA "
                f"({ca.certificate.subject.rfc4514_string()})"
            )
    entries = dict(revoked_entries(folder, ca))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for cert in revoke:
        entries.setdefault(cert.serial_number, now)
    path = folder / "crl.pem"
    write_file(path, pki.issue_crl(ca, sorted(entries.items()), valid_days=valid_days))
    return path


def issue_agency(
    ca: pki.Issued,
    folder: Path,
    *,
    code: str,
    name: str,
    key_type: pki.KeyType = "rsa",
    valid_days: int = 825,
    force: bool = False,
) -> AgencyFiles:
    """A new key (0600) and certificate for *code* in *folder*; refuses to replace a key
    unless *force* (use :func:`rotate_agency` to keep the old certificate usable)."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    if not force and (key.exists() or cert.exists()):
        raise FileExistsError(
            f"{folder} already holds a key for {code}; use `keys rotate` to replace it and "
            "keep the old certificate registered, or --force to overwrite it"
        )
    issued = pki.issue_agency_certificate(
        ca, code=code, name=name, key_type=key_type, valid_days=valid_days
    )
    write_file(key, issued.key_pem, secret=True)
    write_file(cert, issued.cert_pem)
    return AgencyFiles(key, cert, issued)


def rotate_agency(
    ca: pki.Issued,
    folder: Path,
    *,
    code: str,
    name: str,
    key_type: pki.KeyType = "rsa",
    valid_days: int = 825,
) -> AgencyFiles:
    """Move the current pair aside as ``key-<serial>.pem``/``cert-<serial>.pem`` and issue a
    new ``key.pem``/``cert.pem``; the caller registers both certificates for the overlap."""
    key, cert = folder / "key.pem", folder / "cert.pem"
    if not cert.exists():
        raise FileNotFoundError(f"{cert} not found: nothing to rotate (use `keys issue`)")
    old = pki.load_certificate(cert.read_bytes())
    tag = format(old.serial_number, "x")[:16]
    archived_cert = folder / f"cert-{tag}.pem"
    archived_key = folder / f"key-{tag}.pem"
    if archived_cert.exists():
        raise FileExistsError(f"{archived_cert} already exists")
    # The new pair is made in memory first: if issuing fails, the old pair is still in place.
    issued = pki.issue_agency_certificate(
        ca, code=code, name=name, key_type=key_type, valid_days=valid_days
    )
    cert.replace(archived_cert)
    if key.exists():
        key.replace(archived_key)
    write_file(key, issued.key_pem, secret=True)
    write_file(cert, issued.cert_pem)
    return AgencyFiles(key, cert, issued, archived_certificate=archived_cert)
