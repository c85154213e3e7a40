"""Demo material: a CA with its CRL, the hub's key, and per-agency keys, certificates and
credentials.

Generated on the machine that runs the demo (``lienthong demo init``) and never committed: the
agency list comes from the directory file, so the demo material always matches it. Private keys
and credentials are written readable by the owner only.
"""

from __future__ import annotations

import secrets
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hub.config import credential_digest
from signing.authority import load_ca, publish_crl
from signing.keyfiles import write_file
from signing.pki import issue_agency_certificate, issue_hub_certificate, new_ca


@dataclass(frozen=True)
class DemoAgency:
    code: str
    name: str
    role: str


def directory_entries(agencies_file: Path) -> list[DemoAgency]:
    """The accounts listed in an agencies file, read without loading their (missing) material."""
    with agencies_file.open("rb") as fh:
        data = tomllib.load(fh)
    return [
        DemoAgency(e["code"], e["name"], e.get("role", "agency")) for e in data.get("agency", [])
    ]


def agency_dir(root: Path, code: str) -> Path:
    return root / "agencies" / code


def init_material(
    root: Path,
    agencies: list[DemoAgency],
    hub_id: str,
    *,
    force: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> int:
    """Create what is missing under *root*; returns how many accounts got new material.

    Existing material is kept unless *force*, so running the demo twice keeps its credentials.
    """
    ca_dir = root / "ca"
    if force or not (ca_dir / "cert.pem").exists():
        progress("creating the demo certification authority")
        ca = new_ca("Lienthong Demo CA (không dùng thật)")
        write_file(ca_dir / "key.pem", ca.key_pem, secret=True)
        write_file(ca_dir / "cert.pem", ca.cert_pem)
        (ca_dir / "crl.pem").unlink(missing_ok=True)  # the old CA's CRL
        force = True  # every certificate must now chain to the new CA
    else:
        ca = load_ca(ca_dir)
    # A fresh CRL on every run (with what was revoked so far): the hub refuses stale CRLs,
    # and demo material may be months old.
    publish_crl(ca_dir, ca)

    if force or not (root / "hub" / "cert.pem").exists():
        progress(f"issuing the hub certificate for {hub_id}")
        hub = issue_hub_certificate(ca, hub_id=hub_id)
        write_file(root / "hub" / "key.pem", hub.key_pem, secret=True)
        write_file(root / "hub" / "cert.pem", hub.cert_pem)

    created = 0
    for agency in agencies:
        folder = agency_dir(root, agency.code)
        if not force and (folder / "credential").exists():
            continue
        progress(f"issuing material for {agency.code} {agency.name}")
        if agency.role == "agency":
            issued = issue_agency_certificate(ca, code=agency.code, name=agency.name)
            write_file(folder / "key.pem", issued.key_pem, secret=True)
            write_file(folder / "cert.pem", issued.cert_pem)
        token = secrets.token_urlsafe(32)
        write_file(folder / "credential.sha256", (credential_digest(token) + "\n").encode())
        write_file(folder / "credential", (token + "\n").encode(), secret=True)
        created += 1
    return created
