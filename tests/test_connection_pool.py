"""One connection pool per run: the platform and carrier clients of one event loop share a pool."""

from __future__ import annotations

import asyncio

import httpx

from aftersales.integrations.platform import CarrierClient, PlatformClient


def test_clients_of_one_run_share_one_pool_which_closes_with_the_run():
    async def one_run():
        async with PlatformClient() as first:
            pass
        async with PlatformClient() as second, CarrierClient() as carrier:
            # the pool outlives a client: the next call of the run reuses its connections
            assert second._http is first._http and not first._http.is_closed
            assert carrier._http is not first._http  # another system, another pool
        async with PlatformClient(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as own:
            assert own._http is not first._http  # a client with its own transport keeps its own
        assert own._http.is_closed
        return first._http

    pool = asyncio.run(one_run())
    assert pool.is_closed  # closed when the run's loop ended
    assert asyncio.run(one_run()) is not pool  # the next run has its own
