"""The agency directory: who exists, their role, how they are delivered to, what they sign with.

Loaded from ``agencies.toml`` at start-up, kept in memory for O(1) look-ups on the request path,
and mirrored into the ``agencies`` table so that stored rows always point at a known agency.
"""

from __future__ import annotations

import fnmatch
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.ext.asyncio import AsyncSession

from hub.config import AgencyConfig, DeliveryMode, GroupConfig, Role, credential_digest
from hub.errors import ConfigError
from hub.routing import matches_any
from signing.pki import fingerprint, load_certificates
from tracking.models import Agency as AgencyRow
from tracking.models import AgencyCertificate, utcnow


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    role: Role
    parent: str = ""
    delivery: DeliveryMode = "pull"
    push_url: str = ""
    certificates: tuple[x509.Certificate, ...] = ()
    credential_sha256: str = ""
    legacy_sha1: bool = False
    read_bodies: bool = False
    """An auditor who may download package bodies too (auditors read every trace regardless)."""
    """SHA-1 signatures are accepted from this agency (and marked weak in the trace)."""
    max_attempts: int | None = None
    max_age_seconds: int | None = None
    """Push retry limits for this agency; None: the hub's ``[delivery]`` defaults."""
    via: str = ""
    """The hub account of the peer hub that serves this agency ("" : this hub serves it)."""
    serves: tuple[str, ...] = ()
    """For a hub account: the code patterns it may send packages for (hub.routing)."""

    @property
    def can_exchange(self) -> bool:
        """Only agencies send and receive packages; auditors and admins never appear in one."""
        return self.role == "agency"

    @property
    def is_local(self) -> bool:
        """An agency this hub serves itself (not one reached through a peer hub)."""
        return self.can_exchange and not self.via

    @property
    def is_hub(self) -> bool:
        return self.role == "hub"


@dataclass(frozen=True)
class Group:
    """A group address, expanded once when the directory is loaded: routing a package to a group
    costs one look-up, however many members it has."""

    code: str
    name: str
    members: tuple[str, ...]


def expand(group: GroupConfig, agencies: Iterable[Agency]) -> tuple[str, ...]:
    """The agency codes *group* stands for, in directory order: every agency named or matched by
    ``members`` and every direct subordinate of a unit in ``children_of``. Pure."""
    parents = set(group.children_of)
    return tuple(
        a.code
        for a in agencies
        if a.can_exchange
        and (
            a.parent in parents
            or any(fnmatch.fnmatchcase(a.code, pattern) for pattern in group.members)
        )
    )


class Directory:
    def __init__(self, agencies: Iterable[Agency], groups: Iterable[Group] = ()) -> None:
        self._by_code = {a.code: a for a in agencies}
        self._by_credential = {
            a.credential_sha256: a for a in self._by_code.values() if a.credential_sha256
        }
        self._groups = {g.code: g for g in groups}
        clash = self._groups.keys() & self._by_code.keys()
        if clash:
            raise ValueError(f"codes used for both an agency and a group: {sorted(clash)}")

    @classmethod
    def from_config(
        cls,
        configs: Iterable[AgencyConfig],
        source: str = "agencies.toml",
        groups: Iterable[GroupConfig] = (),
    ) -> Directory:
        agencies = []
        for c in configs:
            certs: list[x509.Certificate] = []
            for pem in c.certificates:
                try:
                    certs.extend(load_certificates(pem))
                except ValueError as exc:
                    raise ConfigError(source, f"agency {c.code}.certificates", str(exc)) from exc
            agencies.append(
                Agency(
                    code=c.code,
                    name=c.name,
                    role=c.role,
                    parent=c.parent,
                    delivery=c.delivery,
                    push_url=c.push_url,
                    certificates=tuple(certs),
                    credential_sha256=c.credential_sha256,
                    legacy_sha1=c.legacy_sha1,
                    read_bodies=c.read_bodies,
                    max_attempts=c.max_attempts,
                    max_age_seconds=c.max_age_seconds,
                    via=c.via,
                    serves=c.serves,
                )
                if not c.via
                else Agency(
                    # Reached through its hub: no credential here, and always that hub's way.
                    code=c.code,
                    name=c.name,
                    role=c.role,
                    parent=c.parent,
                    delivery="peer",
                    certificates=tuple(certs),
                    legacy_sha1=c.legacy_sha1,
                    via=c.via,
                )
            )
        expanded = []
        for g in groups:
            members = expand(g, agencies)
            if not members:
                raise ConfigError(source, f"group {g.code}.members", "matches no agency")
            expanded.append(Group(g.code, g.name, members))
        return cls(agencies, expanded)

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, code: str) -> Agency | None:
        return self._by_code.get(code)

    def exchanging(self) -> list[Agency]:
        """The agencies documents can be addressed to (local or through a peer), by code."""
        return sorted((a for a in self._by_code.values() if a.can_exchange), key=lambda a: a.code)

    def group(self, code: str) -> Group | None:
        return self._groups.get(code)

    @property
    def groups(self) -> list[Group]:
        return list(self._groups.values())

    def authenticate(self, token: str) -> Agency | None:
        """The agency a bearer credential belongs to, or None."""
        digest = credential_digest(token)
        agency = self._by_credential.get(digest)
        # The dict lookup already found it; compare again in constant time for good measure.
        if agency is None or not hmac.compare_digest(agency.credential_sha256, digest):
            return None
        return agency

    def local(self, code: str) -> Agency | None:
        """The agency *code* if this hub serves it itself."""
        agency = self._by_code.get(code)
        return agency if agency is not None and agency.is_local else None

    def speaks_for(self, hub: Agency, code: str) -> bool:
        """Whether the hub account *hub* may send packages in the name of *code*.

        Yes for an agency listed with ``via = hub``, and for a code this directory does not
        list that matches one of the hub's ``serves`` patterns. Never for a code listed
        otherwise, so no pattern, however wide, lets a peer speak for a local agency, for an
        agency reached through another peer, or for an account.
        """
        if not hub.is_hub:
            return False
        listed = self._by_code.get(code)
        if listed is not None:
            return listed.can_exchange and listed.via == hub.code
        return matches_any(hub.serves, code)

    def children(self, code: str) -> list[Agency]:
        return [a for a in self._by_code.values() if a.parent == code]


async def sync_directory(session: AsyncSession, directory: Directory) -> None:
    """Mirror the configured directory into the database (agencies are never deleted: old
    documents still point at them)."""
    now = utcnow()
    for agency in directory:
        await session.merge(
            AgencyRow(
                code=agency.code,
                name=agency.name,
                parent_code=agency.parent or None,
                role="remote" if agency.via else agency.role,
                delivery_mode=agency.delivery,
                push_url=agency.push_url or None,
                credential_sha256=agency.credential_sha256 or None,
                updated_at=now,
            )
        )
    await session.flush()
    for agency in directory:
        for cert in agency.certificates:
            await session.merge(
                AgencyCertificate(
                    fingerprint=fingerprint(cert),
                    agency_code=agency.code,
                    pem=cert.public_bytes(Encoding.PEM).decode("ascii"),
                )
            )
