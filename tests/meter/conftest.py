"""Meter fixtures: the app served by uvicorn (as for chat replies), with a price book."""

from __future__ import annotations

from chat.conftest import fake, fake_openai_server, make_api

__all__ = ["fake", "fake_openai_server", "make_api"]
