"""The FastAPI glue on a host app (in-process) billing through a real tokenbank: a route
holds before it runs, commits when it returns, releases when it raises, and the person
sees tokenbank's 402 as the host app's answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Header

from tokenbank_client import ActiveHold, AsyncTokenbank
from tokenbank_client.fastapi import hold_tokens, install

from sdk_kit import TokenbankServer, funded

pytestmark = pytest.mark.anyio


class ModelDown(Exception):
    pass


def user_id(x_user: str = Header()) -> str:
    return x_user  # stands in for the host's own sign-in


def host_app(billing: AsyncTokenbank) -> FastAPI:
    app = FastAPI()
    install(app, billing)

    @app.post("/reply")
    async def reply(fail: bool = False, used: int | None = None,
                    hold: ActiveHold = hold_tokens(3, user_id)) -> dict[str, int]:
        if fail:
            raise ModelDown
        if used is not None:
            hold.use(used)
        return {"hold": hold.id}

    @app.get("/balance")
    async def balance(x_user: str = Header()) -> dict[str, int]:
        return {"available": (await get_billing_of(app).balance(x_user)).available}

    return app


def get_billing_of(app: FastAPI) -> AsyncTokenbank:
    client = app.state.tokenbank
    assert isinstance(client, AsyncTokenbank)
    return client


@asynccontextmanager
async def host(server: TokenbankServer) -> AsyncIterator[httpx.AsyncClient]:
    billing = AsyncTokenbank(server.key, base_url=server.url)
    app = host_app(billing)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with billing, httpx.AsyncClient(transport=transport, base_url="http://host") as c:
        yield c


async def test_a_route_commits_what_it_used(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 10)
    async with host(tokenbank) as c:
        full = await c.post("/reply", headers={"x-user": customer})
        partial = await c.post("/reply", params={"used": 1}, headers={"x-user": customer})
        after = (await c.get("/balance", headers={"x-user": customer})).json()
    assert full.status_code == 200 and partial.status_code == 200
    assert after == {"available": 10 - 3 - 1}


async def test_a_failing_route_releases_its_hold(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 5)
    async with host(tokenbank) as c:
        failed = await c.post("/reply", params={"fail": True}, headers={"x-user": customer})
        after = (await c.get("/balance", headers={"x-user": customer})).json()
    assert failed.status_code == 500
    assert after == {"available": 5}


async def test_out_of_tokens_is_the_servers_402(tokenbank: TokenbankServer, customer: str) -> None:
    await funded(tokenbank, customer, 2)
    async with host(tokenbank) as c:
        refused = await c.post("/reply", headers={"x-user": customer})
    assert refused.status_code == 402
    error = refused.json()["error"]
    assert (error["code"], error["required"]) == ("insufficient_tokens", 3)


async def test_tokenbank_refusing_the_key_is_a_503_not_the_hosts_401(
    tokenbank: TokenbankServer, customer: str
) -> None:
    billing = AsyncTokenbank("tbk_revoked_or_wrong", base_url=tokenbank.url)
    transport = httpx.ASGITransport(app=host_app(billing), raise_app_exceptions=False)
    async with billing, httpx.AsyncClient(transport=transport, base_url="http://host") as c:
        r = await c.post("/reply", headers={"x-user": customer})
    assert r.status_code == 503 and r.json()["error"]["code"] == "billing_unavailable"

