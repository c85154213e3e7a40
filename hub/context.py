"""What the hub's services share: built once by the composition root (cli.py)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hub.directory import Directory
from hub.edxml.schema import ValidationPolicy
from hub.notify import InboxNotifier
from signing.xmldsig import SignaturePolicy
from tracking.store import Store


@dataclass
class HubContext:
    hub_id: str
    store: Store
    directory: Directory
    policy: SignaturePolicy = field(default_factory=SignaturePolicy)
    validation: ValidationPolicy = field(default_factory=ValidationPolicy)
    notifier: InboxNotifier = field(default_factory=InboxNotifier)
