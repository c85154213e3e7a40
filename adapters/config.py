"""The configuration file every adapter is started with (``lienthong adapter NAME --config``).

One TOML file per agency connection. The common keys say which hub and who the agency is; the
table named after the adapter (``[folder]``, ``[webhook]``, ``[sdk]``, or a third party's) is
that adapter's own and is read by its ``from_config``::

    hub_url = "https://lienthong.hanoi.gov.vn"
    agency = "000.00.31.H26"                     # UBND quận Ba Đình
    credential_file = "secrets/ba-dinh.credential"  # the credential the hub issued (keep 0600)
    key = "secrets/ba-dinh.key.pem"              # the agency's signing key (PEM)
    certificate = "secrets/ba-dinh.cert.pem"     # its certificate, registered at the hub
    trust_anchors = ["trust/root-ca.pem"]        # CAs that senders' certificates chain to
    wait = 20                                    # long poll, seconds
    lease = 300                                  # how long a fetched delivery is reserved

    [folder]
    root = "/srv/qlvb/lienthong"

Relative paths are read against the file's own directory. A credential is never written in the
file itself (``credential = …`` is refused): it comes from ``credential_file``. Anything wrong is
a :class:`hub.errors.ConfigError` naming the file, the key and the problem.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.sdk import Credentials
from hub.errors import ConfigError

__all__ = ["AdapterConfig", "load_config"]

AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
COMMON_KEYS = frozenset(
    {"hub_url", "agency", "credential_file", "key", "certificate", "trust_anchors", "wait", "lease"}
)


@dataclass(frozen=True)
class AdapterConfig:
    """The common part of an adapter's configuration; ``section`` is the adapter's own table."""

    path: Path
    adapter: str  # the adapter's name: its table in the file
    hub_url: str
    agency: str
    credentials: Credentials
    trust_anchors: tuple[Path, ...] = ()
    wait: float = 20
    lease: float = 300
    section: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, value: str) -> Path:
        """A path from the file, read against the file's directory."""
        return (self.path.parent / value).resolve()

    def error(self, key: str, problem: str) -> ConfigError:
        """An error about a key of the adapter's own table."""
        return ConfigError(str(self.path), f"[{self.adapter}] {key}", problem)


def _read(path: Path, key: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(str(path), key, "expected a file path")
    file = (path.parent / value).resolve()
    try:
        return file.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), key, f"cannot read {file}: {exc.strerror}") from exc


def _seconds(path: Path, key: str, value: Any, default: float, *, low: float, high: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(str(path), key, f"expected a number of seconds from {low:g} to {high:g}")
    return float(value)


def load_config(path: Path, adapter: str) -> AdapterConfig:
    """Read *path* for the adapter called *adapter* (whose table is ``[adapter]``)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), "(file)", f"cannot read it: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "(file)", f"not valid TOML: {exc}") from exc
    if "credential" in data:
        raise ConfigError(
            str(path),
            "credential",
            "never write the credential in the configuration; put it in a file of its own "
            "(mode 0600) and name it with credential_file",
        )
    unknown = sorted(k for k, v in data.items() if k not in COMMON_KEYS and not isinstance(v, dict))
    if unknown:
        raise ConfigError(str(path), ", ".join(unknown), "unknown key")
    for key in ("hub_url", "agency", "credential_file"):
        if key not in data:
            raise ConfigError(str(path), key, "required")
    hub_url = data["hub_url"]
    if not isinstance(hub_url, str) or not hub_url.startswith(("http://", "https://")):
        raise ConfigError(str(path), "hub_url", "expected an http(s):// address")
    agency = data["agency"]
    if not isinstance(agency, str) or not AGENCY_CODE.match(agency):
        raise ConfigError(str(path), "agency", "expected an agency code such as 000.00.31.H26")
    token = _read(path, "credential_file", data["credential_file"]).decode("ascii", "replace")
    if not token.strip():
        raise ConfigError(str(path), "credential_file", "the file is empty")
    key_pem = _read(path, "key", data["key"]) if "key" in data else None
    cert_pem = _read(path, "certificate", data["certificate"]) if "certificate" in data else None
    if (key_pem is None) != (cert_pem is None):
        raise ConfigError(str(path), "key and certificate", "give both (to sign) or neither")
    anchors = data.get("trust_anchors", [])
    if not isinstance(anchors, list) or not all(isinstance(a, str) for a in anchors):
        raise ConfigError(str(path), "trust_anchors", "expected a list of file paths")
    for anchor in anchors:
        _read(path, "trust_anchors", anchor)
    section = data.get(adapter, {})
    if not isinstance(section, dict):
        raise ConfigError(str(path), f"[{adapter}]", "expected a table")
    return AdapterConfig(
        path=path.resolve(),
        adapter=adapter,
        hub_url=hub_url.rstrip("/"),
        agency=agency,
        credentials=Credentials(agency, token.strip(), key_pem, cert_pem),
        trust_anchors=tuple((path.parent / a).resolve() for a in anchors),
        wait=_seconds(path, "wait", data.get("wait"), 20, low=0, high=60),
        lease=_seconds(path, "lease", data.get("lease"), 300, low=1, high=3600),
        section=section,
    )
