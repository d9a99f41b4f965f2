"""Schemathesis over the app's own OpenAPI schema: every route, authenticated.

``tokenbank serve`` runs in a process of its own on PostgreSQL, with the local Stripe
server behind it. Requests carry an admin's bearer token (an admin reaches every route
a user does, and the admin routes too). For every operation Schemathesis generates
schema-valid and schema-violating requests (its examples, coverage and fuzzing phases);
every response must be non-5xx, violating requests must be refused with a 4xx, requests
without the token must be refused, and every response must match the schema it is
documented with (body, content type, headers).

Every route declares the error statuses it answers (``status_code_conformance`` is on).
Four checks are off, each for a stated reason: ``negative_data_rejection`` (a repeated
scalar query parameter, ``?query=a&query=b``, is read as its last value by the framework,
which the fuzzer counts as accepting a schema-violating request — answered 200 with
valid data, never a 5xx), ``positive_data_acceptance``
(the schema cannot say which tiers, ids or passwords exist or are strong enough, so a
schema-valid request may rightly be refused) and the undeclared-method probes
(``unsupported_method``, ``allow_header_conformance``: the web client's catch-all
``GET /{path}`` answers GET on a POST-only API path with 404, not 405). The inputs the
fuzzer once turned into 500s (a NUL in text, ids beyond 64 bits) are pinned by the
tests below.

The unauthenticated surface (webhook headers and bodies, validly signed or not, however
deep; page paths of any text or bytes) is fuzzed with Hypothesis at the end of this file
against a second app process serving the built client: any 5xx fails.

The app runs in its own process on purpose: under CPython 3.11, formatting a traceback
in a server thread while pytest formats another can crash pytest itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from sqlalchemy import update

from reliability.cluster import app_env, start_sim
from reliability.harness import AppProcess
from tokenbank.app import create_app
from tokenbank.auth.models import User
from tokenbank.db import Database

from conftest import _truncate_postgres, make_settings

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240601,
        "generation": {"max-examples": EXAMPLES_PER_OPERATION, "allow-extra-parameters": False},
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"enabled": False},
            "unsupported_method": {"enabled": False},
            "allow_header_conformance": {"enabled": False},
        },
    }
)


def _app_schema() -> dict[str, Any]:
    return create_app(make_settings("sqlite:///unused.db")).openapi()


schema = schemathesis.openapi.from_dict(_app_schema(), config=CONFIG)


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]
    user_id: int
    chat_id: int

    def fresh_headers(self) -> dict[str, str]:
        """A session of its own, for a route that ends sessions."""
        r = httpx.post(f"{self.url}/api/auth/login",
                       json={"username": "fuzzadmin", "password": "fuzz-pass-1"}, timeout=30)
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


#: Routes that end the session they are called with, or all of the user's.
ENDS_SESSIONS = {"/api/auth/logout", "/api/auth/logout-all", "/api/auth/change-password"}


@pytest.fixture(scope="module")
def target(postgres_url: str) -> Iterator[Target]:
    _truncate_postgres(postgres_url)
    app = AppProcess({})
    sim = start_sim(f"{app.url}/api/payment/webhook")
    app.env |= app_env(postgres_url, sim, BACKGROUND_JOBS="false")
    try:
        app.start()
        r = httpx.post(f"{app.url}/api/auth/register", json={
            "username": "fuzzadmin", "email": "fuzz@example.com", "password": "fuzz-pass-1"})
        assert r.status_code == 201, r.text
        me = int(r.json()["user"]["id"])
        asyncio.run(_promote(postgres_url, me))
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        chat = httpx.post(f"{app.url}/api/chats", json={"title": "fuzz"}, headers=headers)
        assert chat.status_code == 201
        yield Target(app.url, headers, me, int(chat.json()["id"]))
    finally:
        app.stop()
        sim.stop()
        app.remove_log()


async def _promote(url: str, user_id: int) -> None:
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as s:
            await s.execute(update(User).where(User.id == user_id).values(is_admin=True))
    finally:
        await db.dispose()


@schema.parametrize()
def test_no_5xx_and_every_response_matches_the_schema(
    case: schemathesis.Case, target: Target
) -> None:
    if case.path not in ENDS_SESSIONS:
        case.call_and_validate(base_url=target.url, headers=target.headers)
        return
    try:
        case.call_and_validate(base_url=target.url, headers=target.fresh_headers())
    finally:  # sign-out everywhere ended the shared session too: the next tests get a new one
        target.headers.update(target.fresh_headers())


def _call(target: Target, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = target.headers | kwargs.pop("headers", {})
    return httpx.request(method, f"{target.url}{path}", headers=headers, timeout=30, **kwargs)


# --- found by the fuzzer, fixed, and pinned ----------------------------------------------------


def test_admin_routes_answer_ids_beyond_64_bits_without_a_500(target: Target) -> None:
    huge = 2**64
    answers = [
        _call(target, "GET", f"/api/admin/users/{huge}"),
        _call(target, "POST", f"/api/admin/users/{huge}/tokens",
              json={"amount": 5, "reason": "fuzz"}),
    ]
    assert all(400 <= r.status_code < 500 for r in answers), [
        (r.status_code, r.text) for r in answers]


def _errors_each_route_answers(schema: dict[str, Any]) -> dict[tuple[str, str], set[int]]:
    """The error statuses each route answers by its contract (API.md and the error types
    its code raises), which its OpenAPI description should therefore declare."""
    expected: dict[tuple[str, str], set[int]] = {}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses: set[int] = set()
            if operation.get("security"):
                statuses.add(401)
            if path.startswith("/api/admin/"):
                statuses.add(403)
            if any(p["in"] == "path" for p in operation.get("parameters", [])):
                statuses.add(404)
            expected[(method.upper(), path)] = statuses
    expected[("POST", "/api/payment/webhook")] |= {400}
    expected[("POST", "/api/payment/confirm-payment")] |= {404}
    expected[("POST", "/api/auth/register")] |= {409}
    expected[("POST", "/api/auth/login")] |= {401}
    return expected


def test_every_route_declares_the_errors_it_answers() -> None:
    schema = _app_schema()
    missing = {}
    for (method, path), statuses in _errors_each_route_answers(schema).items():
        declared = {int(s) for s in schema["paths"][path][method.lower()]["responses"]}
        if statuses - declared:
            missing[f"{method} {path}"] = sorted(statuses - declared)
    assert missing == {}


# --- text PostgreSQL cannot store ------------------------------------------------------------

BAD_TEXT = {"nul": "\x00", "lone_surrogate": "\ud800"}


def _text_cases() -> list[Any]:
    """(method, path template, JSON body) per route; ``{bad}`` becomes the bad text."""
    routes: dict[str, tuple[str, str, dict[str, Any]]] = {
        "confirm_payment": ("POST", "/api/payment/confirm-payment",
                            {"payment_intent_id": "pi_{bad}"}),
        "create_payment_intent": ("POST", "/api/payment/create-payment-intent",
                                  {"tier": "starter{bad}"}),
        "create_chat": ("POST", "/api/chats", {"title": "a{bad}b"}),
        "generate": ("POST", "/api/chats/{chat}/generate", {"content": "a{bad}b"}),
        "generate_stream": ("POST", "/api/chats/{chat}/generate/stream",
                            {"content": "a{bad}b"}),
        "register": ("POST", "/api/auth/register", {
            "username": "a{bad}b", "email": "a{bad}@example.com", "password": "a-long-pass-1"}),
        "login": ("POST", "/api/auth/login", {"username": "a{bad}b", "password": "whatever-1"}),
        "admin_tokens": ("POST", "/api/admin/users/{me}/tokens",
                         {"amount": 1, "reason": "a{bad}b"}),
    }
    return [
        pytest.param(*route, bad, id=f"{name}-{bad}")
        for name, route in routes.items()
        for bad in sorted(BAD_TEXT)
    ]


@pytest.mark.parametrize(("method", "path", "body", "bad"), _text_cases())
def test_text_the_database_cannot_store_is_a_4xx_never_a_500(
    target: Target, method: str, path: str, body: dict[str, Any], bad: str
) -> None:
    first = _call(target, "GET", "/api/payment/user/tokens")
    assert first.status_code == 200, first.text
    before = first.json()["balance"]
    # json.dumps writes both as escapes (\u0000, \ud800), as a client's JSON would.
    raw = json.dumps(body).replace("{bad}", json.dumps(BAD_TEXT[bad])[1:-1]).encode()
    r = _call(target, method, path.format(chat=target.chat_id, me=target.user_id),
              content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert _call(target, "GET", "/api/payment/user/tokens").json()["balance"] == before


def test_a_nul_in_a_payment_id_in_the_path_is_a_4xx(target: Target) -> None:
    r = _call(target, "GET", "/api/payment/payments/pi_%00x")
    assert 400 <= r.status_code < 500, r.text


def test_a_nul_in_the_admin_user_search_is_a_4xx(target: Target) -> None:
    r = _call(target, "GET", "/api/admin/users", params={"query": "a\x00b"})
    assert 400 <= r.status_code < 500, r.text


# --- the unauthenticated surface, fuzzed with Hypothesis ------------------------------------
#
# What anyone on the internet can send without an account: Stripe webhook deliveries (any
# header, any body, validly signed or not) and page paths. Every answer must be below 500;
# a 4xx must carry a machine-readable error code. The app runs with the built web client,
# so page paths reach real files.

from urllib.parse import quote  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from payments.kit import sign  # noqa: E402
from reliability.cluster import WEBHOOK_SECRET  # noqa: E402
from reliability.harness import REPO  # noqa: E402

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def public(postgres_url: str) -> Iterator[httpx.Client]:
    _truncate_postgres(postgres_url)
    app = AppProcess({})
    sim = start_sim(f"{app.url}/api/payment/webhook")
    app.env |= app_env(postgres_url, sim, BACKGROUND_JOBS="false",
                       CLIENT_DIST=str(REPO / "client" / "dist"))
    try:
        app.start()
        with httpx.Client(base_url=app.url, timeout=30) as client:
            yield client
    finally:
        app.stop()
        sim.stop()
        app.remove_log()


def _no_5xx(r: httpx.Response) -> None:
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.request.method != "HEAD":
        assert r.headers["content-type"].startswith("application/json"), r.text[:200]
        assert isinstance(r.json()["error"]["code"], str)


#: Bytes allowed in a header value (RFC 9110: visible ASCII, obs-text, space and tab, not
#: at the ends); anything else the HTTP server refuses before the app sees the request.
_FIELD_BYTES = bytes([9, *range(0x20, 0x7F), *range(0x80, 0x100)])


def _field_value(raw: bytes) -> bytes:
    return bytes(b for b in raw if b in _FIELD_BYTES).strip(b" \t")


header_bytes = st.binary(min_size=0, max_size=300).map(_field_value)
signature_like = st.builds(
    lambda t, scheme, sig, extra: f"t={t},{scheme}={sig}{extra}".encode(),
    st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=12)),
    st.sampled_from(["v1", "v0", "V1", "v1 ", "", "t"]),
    st.text(max_size=80),
    st.sampled_from(["", ",v1=00", ",t=1", ",,", ",="]),
).map(_field_value)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
event_like = st.fixed_dictionaries(
    {
        "id": st.one_of(st.text(max_size=40), st.integers(), st.none()),
        "type": st.one_of(
            st.sampled_from(["payment_intent.succeeded", "charge.refunded",
                             "charge.dispute.funds_withdrawn", "refund.updated",
                             "payment_intent.canceled", "customer.created"]),
            st.text(max_size=30),
        ),
        "data": st.one_of(
            st.fixed_dictionaries({"object": st.dictionaries(
                st.sampled_from(["id", "object", "payment_intent", "charge", "status", "amount"]),
                st.one_of(st.text(max_size=30), st.integers(), st.none(), json_values),
                max_size=6,
            )}),
            json_values,
        ),
    },
    optional={"object": st.just("event"), "created": st.integers(), "livemode": st.booleans()},
)


@FUZZ
@given(signature=st.one_of(header_bytes, signature_like), body=st.binary(max_size=2000))
def test_fuzz_webhook_any_signature_any_body(
    public: httpx.Client, signature: bytes, body: bytes
) -> None:
    r = public.post("/api/payment/webhook", content=body,
                    headers={"Stripe-Signature": signature})  # type: ignore[dict-item]
    _no_5xx(r)
    assert r.status_code == 400, (signature, r.text)


@FUZZ
@given(event=st.one_of(event_like, json_values), depth=st.sampled_from([0, 0, 0, 5_000, 100_000]))
def test_fuzz_webhook_validly_signed_bodies(
    public: httpx.Client, event: Any, depth: int
) -> None:
    body = json.dumps(event).encode()
    if depth:
        body = b'{"id": "evt_deep", "data": ' + b"[" * depth + body + b"]" * depth + b"}"
    r = public.post("/api/payment/webhook", content=body,
                    headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET),
                             "Content-Type": "application/json"})
    _no_5xx(r)


@FUZZ
@given(path=st.text(max_size=400), suffix=st.sampled_from(["", "/", "%00", "%ff", "%c0%af"]))
def test_fuzz_page_paths(public: httpx.Client, path: str, suffix: str) -> None:
    raw = "/" + quote(path, safe="/:@!$&'()*+,;=") + suffix
    r = public.get(raw)
    _no_5xx(r)


@FUZZ
@given(segments=st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=4),
       prefix=st.sampled_from(["", "assets/", "chat/", "api/", "docs/", "../"]))
def test_fuzz_page_paths_of_raw_bytes(
    public: httpx.Client, segments: list[bytes], prefix: str
) -> None:
    raw = "/" + prefix + "/".join(quote(s, safe="") for s in segments)
    _no_5xx(public.get(raw))
    _no_5xx(public.head(raw))


def test_fuzz_page_paths_known_cases(public: httpx.Client) -> None:
    for raw in ["/x%00", "/assets/%00", "/" + "a" * 5000, "/assets/" + "%2e%2e/" * 20 + "etc/passwd",
                "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/..%5c..%5cetc%5cpasswd", "/index.html%00.js"]:
        r = public.get(raw)
        _no_5xx(r)
        assert "root:x:" not in r.text
