"""What the hub's services share: built once by the composition root (cli.py)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from hub.alerts import AlertHook
from hub.cluster import node_id
from hub.config import DeadlineSettings, DeliverySettings
from hub.directory import Agency, Directory
from hub.edxml.schema import ValidationPolicy
from hub.errors import LienthongError
from hub.federation import Destination, destination
from hub.maintenance import MaintenanceGate
from hub.metrics import HubMetrics
from hub.national import NationalDirectory
from hub.notify import Doorbell, InboxNotifier
from hub.outbound import PULL, first_attempt_at
from hub.retry import RetryPolicy
from hub.routing import PeerRoutes
from signing.receipts import ReceiptSigner
from signing.trust import TrustStore
from signing.xmldsig import SignaturePolicy
from tracking.store import Store


def _trusts_nothing() -> TrustStore:
    return TrustStore(anchors=())


@dataclass
class HubContext:
    hub_id: str
    store: Store
    directory: Directory
    policy: SignaturePolicy = field(default_factory=SignaturePolicy)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    notifier: InboxNotifier = field(default_factory=InboxNotifier)
    # Rung when a delivery the hub sends itself (push, a peer hub) is queued: wakes the
    # dispatcher (hub.dispatcher) instead of waiting for its next poll.
    outbox: Doorbell = field(default_factory=Doorbell)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    deadlines: DeadlineSettings = field(default_factory=DeadlineSettings)
    # Where alerts go besides the trace and the log (hub.alerts; by default nowhere).
    alerts: AlertHook = field(default_factory=AlertHook)
    # The safe defaults: a trust store without anchors refuses every certificate, and without a
    # receipt signer the hub accepts nothing (it could not prove what it received).
    trust: TrustStore = field(default_factory=_trusts_nothing)
    receipts: ReceiptSigner | None = None
    # Peer hubs, for codes the directory does not list (hub.routing; none: no federation).
    peers: tuple[PeerRoutes, ...] = ()
    # The imported national directory (hub.national; empty: none imported, every code a peer
    # routes is taken on trust).
    national: NationalDirectory = field(default_factory=NationalDirectory)
    # This process's name among the hub nodes sharing the database (hub.cluster).
    node: str = field(default_factory=node_id)
    # This process's counters (hub.metrics) and its view of maintenance mode (hub.maintenance).
    metrics: HubMetrics = field(default_factory=HubMetrics)
    maintenance: MaintenanceGate = field(default_factory=MaintenanceGate)

    def destination(self, code: str) -> Destination | None:
        """Where *code* is delivered: a local agency, through a peer hub, or nowhere (None)."""
        return destination(self.directory, self.peers, code, self.national)

    def policy_for(self, agency: Agency) -> SignaturePolicy:
        """The signature policy for *agency*'s packages: SHA-1 only if it is marked legacy."""
        if agency.legacy_sha1 and not self.policy.allow_sha1:
            return dataclasses.replace(self.policy, allow_sha1=True)
        return self.policy

    def retry_policy_for(self, agency: Agency) -> RetryPolicy:
        """Push retry limits for *agency*: its own where it has them, else ``[delivery]``'s."""
        d = self.delivery
        return RetryPolicy(
            max_attempts=agency.max_attempts or d.max_attempts,
            max_age=dt.timedelta(seconds=agency.max_age_seconds or d.max_age_seconds),
            base_delay=dt.timedelta(milliseconds=d.retry_base_ms),
            max_delay=dt.timedelta(seconds=d.retry_max_delay_seconds),
        )

    def first_attempt_at(self, recipient: str, queued_at: dt.datetime) -> dt.datetime | None:
        """``next_attempt_at`` of a delivery queued now for *recipient* (by its delivery mode; a
        code reached through a peer hub is the hub's to send, like a push)."""
        where = self.destination(recipient)
        return first_attempt_at(where.mode if where is not None else PULL, queued_at)

    @property
    def receipt_signer(self) -> ReceiptSigner:
        if self.receipts is None:
            raise LienthongError(
                "This hub has no signing key for receipts ([hub] key); it accepts nothing."
            )
        return self.receipts
