"""Signed checkpoints of the audit chain, made by the hub and checked with its certificate."""

from __future__ import annotations

import pytest
from cryptography import x509

from hub.checkpoints import audit, make_checkpoint
from signing.checkpoints import CheckpointError, verify_checkpoint
from tests.support import BA_DINH, CITY, Hub, document


def hub_cert(hub: Hub) -> x509.Certificate:
    assert hub.world.hub is not None
    return hub.world.hub.certificate


async def test_the_hub_signs_its_chain_head_once_per_new_head(hub: Hub) -> None:
    assert await make_checkpoint(hub.ctx) is None  # nothing to sign yet
    await hub.send(document(CITY, (BA_DINH,)))
    first = await make_checkpoint(hub.ctx)
    assert first is not None
    signed = verify_checkpoint(first.jws, hub_cert(hub))
    assert (signed.hub, signed.seq, signed.head_hash) == ("test-hub", first.seq, first.head_hash)
    assert await make_checkpoint(hub.ctx) is None  # the head did not move
    await hub.send(document(CITY, (BA_DINH,), number="2"))
    second = await make_checkpoint(hub.ctx)
    assert second is not None and second.seq > first.seq

    result = await audit(hub.ctx.store, hub_cert(hub), "test-hub")
    assert result.chain.intact
    assert result.checkpoints == 2
    assert result.chain.head_seq == second.seq


async def test_a_checkpoint_is_not_a_receipt_nor_the_other_way_round(hub: Hub) -> None:
    receipt = await hub.send(document(CITY, (BA_DINH,)))
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        verify_checkpoint(receipt["signed_receipt"]["jws"], hub_cert(hub))


async def test_a_checkpoint_does_not_verify_with_another_certificate(hub: Hub) -> None:
    await hub.send(document(CITY, (BA_DINH,)))
    row = await make_checkpoint(hub.ctx)
    assert row is not None
    other = hub.world.accounts[CITY].issued
    assert other is not None
    with pytest.raises(CheckpointError):
        verify_checkpoint(row.jws, other.certificate)
