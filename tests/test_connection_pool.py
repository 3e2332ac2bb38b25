"""One connection pool per run: the platform clients of one flow run share a pool."""

from __future__ import annotations

import asyncio

import httpx
from prefect import flow, task

from aftersales.integrations.platform import CarrierClient, PlatformClient


@task
async def two_calls() -> tuple[int, int, bool]:
    async with PlatformClient() as first:
        pass
    async with PlatformClient() as second, CarrierClient() as carrier:
        # the pool outlives a client: the run's next call reuses its connections
        return id(first._http), id(second._http), carrier._http is first._http


@flow
async def a_run() -> tuple[int, int, bool, int]:
    first, second, carrier_shared = await two_calls()
    async with PlatformClient() as later:
        return first, second, carrier_shared, id(later._http)


def test_the_clients_of_one_flow_run_share_one_pool(stack):
    first, second, carrier_shared, later = asyncio.run(a_run())
    assert first == second == later  # the task's calls and the flow's: one pool
    assert not carrier_shared  # another system, another pool
    assert asyncio.run(a_run())[0] != first  # the next run has its own


def test_outside_a_run_each_client_has_its_own_pool():
    async def calls():
        async with PlatformClient() as one, PlatformClient() as two:
            assert one._http is not two._http
        async with PlatformClient(transport=httpx.MockTransport(lambda request: httpx.Response(200))) as own:
            pass
        return one._http, own._http

    one, own = asyncio.run(calls())
    assert one.is_closed and own.is_closed
