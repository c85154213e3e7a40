"""Key material on disk: writing keys readable by their owner only, and reading the hub's key.

Private keys are written with mode 0600 from the first byte (the file is created with that
mode, then renamed into place), never printed and never logged. The hub's own key is read from
a PEM file (optionally encrypted) or a PKCS#12 bundle (``.p12``/``.pfx``) that also carries its
certificate; the passphrase comes from the environment (``LIENTHONG_HUB_KEY_PASSPHRASE``), never
from a configuration file.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from signing import pki

__all__ = ["HubIdentity", "load_hub_identity", "write_file"]


def write_file(path: Path, data: bytes, *, secret: bool = False) -> None:
    """Write *data* to *path* atomically; mode 0600 if *secret* (a key, a credential), else 0644.

    The temporary file is created with the final mode (``O_EXCL``: nothing already there is
    followed or reused), so a key is never readable by others, not even for a moment.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if secret:
            os.chmod(tmp, 0o600)  # whatever the umask did
        tmp.replace(path)  # atomic: a half-written key never exists under its real name
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@dataclass(frozen=True)
class HubIdentity:
    """The hub's signing key and its certificate, checked to belong together."""

    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def __repr__(self) -> str:  # never show the key
        return f"HubIdentity(certificate={pki.fingerprint(self.certificate)})"


def load_hub_identity(
    key_path: Path, cert_path: Path | None, passphrase: bytes | None = None
) -> HubIdentity:
    """Read the hub's key (PEM or PKCS#12) and certificate; :class:`ValueError` says what is
    wrong, without ever quoting the key or the passphrase."""
    data = key_path.read_bytes()
    bundled: x509.Certificate | None = None
    if key_path.suffix.lower() in (".p12", ".pfx"):
        try:
            loaded, bundled, _extra = pkcs12.load_key_and_certificates(data, passphrase)
        except ValueError as exc:
            hint = "" if passphrase else " (is LIENTHONG_HUB_KEY_PASSPHRASE set?)"
            raise ValueError(
                f"{key_path}: cannot open the PKCS#12 file: wrong passphrase or not PKCS#12{hint}"
            ) from exc
        if loaded is None:
            raise ValueError(f"{key_path}: the PKCS#12 file holds no private key")
        key = loaded
    else:
        try:
            key = pki.load_private_key(data, password=passphrase)
        except ValueError as exc:
            raise ValueError(f"{key_path}: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: a {type(key).__name__} is not an RSA or EC private key")
    if cert_path is not None:
        try:
            certificate = pki.load_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"{cert_path}: {exc}") from exc
    elif bundled is not None:
        certificate = bundled
    else:
        raise ValueError(f"{key_path}: no certificate given and none in the key file")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise ValueError(
            f"the hub key {key_path} does not belong to the hub certificate "
            f"({certificate.subject.rfc4514_string()}, {pki.fingerprint(certificate)})"
        )
    return HubIdentity(key, certificate)
