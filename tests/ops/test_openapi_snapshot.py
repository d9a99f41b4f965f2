"""The web client's API types are generated from the app's schema; this keeps them current."""

from __future__ import annotations

import json
from pathlib import Path

from tokenbank.app import create_app
from tokenbank.config import Settings

CLIENT_SCHEMA = Path(__file__).resolve().parents[2] / "client" / "openapi.json"


def test_client_schema_matches_the_app() -> None:
    app_schema = create_app(Settings(_env_file=None, app_env="development")).openapi()  # type: ignore[call-arg]
    committed = json.loads(CLIENT_SCHEMA.read_text())
    assert committed == json.loads(json.dumps(app_schema)), (
        "client/openapi.json is stale: run `make client-types` and commit the result"
    )
