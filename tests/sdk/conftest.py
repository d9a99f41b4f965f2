"""The SDK against a real tokenbank: ``tokenbank serve`` in its own process (the e2e
stack: the local Stripe server, an SMTP catcher), on SQLite and on PostgreSQL, with API
keys made by the CLI as an operator makes them."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.conftest import running_stack

from conftest import migrated_postgres_database
from sdk_kit import ALL_SCOPES, HOST_ENV, FaultyProxy, TokenbankServer, create_api_key, faulty_proxy


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def tokenbank(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TokenbankServer]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sdk") / "sdk.db"
        with running_stack(f"sqlite:///{path}", HOST_ENV) as stack:
            yield TokenbankServer(stack, create_api_key(stack.db_url, ALL_SCOPES))
        return
    with migrated_postgres_database("tokenbank_sdk", "SDK TESTS ON POSTGRESQL") as url:
        with running_stack(url, HOST_ENV) as stack:
            yield TokenbankServer(stack, create_api_key(stack.db_url, ALL_SCOPES))


@pytest.fixture
def proxy(tokenbank: TokenbankServer) -> Iterator[FaultyProxy]:
    with faulty_proxy(tokenbank.port) as p:
        yield p


@pytest.fixture
def customer() -> str:
    """A fresh external id (the host app's own user id): tests never share customers."""
    return f"user-{uuid.uuid4().hex[:12]}"
