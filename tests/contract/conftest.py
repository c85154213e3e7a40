"""The contract suite runs against a hub on embedded SQLite only: adapters reach the hub over
HTTP, so the database behind it is not what is being tested (tests/integration covers both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.sdk import AgencyClient, Credentials
from tests.contract.harness import FACTORIES, Harness
from tests.support import BA_DINH, Hub, World


@pytest.fixture
def hub_db_url(db_url: str) -> str:
    return db_url


def credentials(world: World, code: str) -> Credentials:
    account = world.accounts[code]
    assert account.issued is not None
    return Credentials(code, account.token, account.issued.key_pem, account.issued.cert_pem)


@pytest.fixture(params=sorted(FACTORIES))
def harness(request: pytest.FixtureRequest, tmp_path: Path, world: World) -> Harness:
    """The adapter under test, for agency Ba Đình (000.00.31.H26)."""
    return FACTORIES[request.param](tmp_path, credentials(world, BA_DINH))


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[AgencyClient]:
    """Ba Đình's client of the hub on loopback, retrying quickly."""
    url = str(hub.http.make_url("")).rstrip("/")
    async with AgencyClient(url, credentials(hub.world, BA_DINH), backoff=0.01) as agency:
        yield agency
