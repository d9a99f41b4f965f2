import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { getSessionToken, setSessionToken } from "../auth/session";
import { apiError, FakeApi } from "../test/fakeApi";
import { createApi, type Api } from "./client";
import { ApiError } from "./errors";
import { fetchQuote, patchChat, refundReply, repliesLeft, tokensPer1kWords, type ModelInfo } from "./pricing";

let fake: FakeApi;
let api: Api;
let signedOut = 0;
beforeEach(async () => {
  fake = await FakeApi.start();
  signedOut = 0;
  setSessionToken("old-token");
  api = createApi({ baseUrl: fake.url, getToken: getSessionToken, onUnauthorized: () => (signedOut += 1) });
});
afterEach(async () => {
  await fake.close();
});

describe("pricing requests", () => {
  it("renew an expired session once and send again, like the generated client", async () => {
    fake.on("POST", "/api/chats/:id/quote", (request) =>
      request.headers.authorization === "Bearer new-token"
        ? { json: { min: 2, max: 5, cap: null, model: "mini", price_version: 1 } }
        : apiError(401, "invalid_token", "expired"),
    );
    fake.on("POST", "/api/auth/refresh", { json: { access_token: "new-token", token_type: "bearer" } });

    const quote = await fetchQuote(api, "7", "Hello", "mini");

    expect(quote).toEqual({ min: 2, max: 5, cap: null, model: "mini", price_version: 1 });
    const sent = fake.requestsTo("POST", "/api/chats/7/quote");
    expect(sent.map((r) => r.headers.authorization)).toEqual(["Bearer old-token", "Bearer new-token"]);
    expect(sent[1]?.body).toEqual({ content: "Hello", model: "mini" });
    expect(sent[1]?.headers["content-type"]).toBe("application/json");
    expect(fake.requestsTo("POST", "/api/auth/refresh")).toHaveLength(1);
    expect(signedOut).toBe(0);
  });

  it("report a session that cannot be renewed", async () => {
    fake.on("PATCH", "/api/chats/:id", apiError(401, "session_revoked", "ended"));
    fake.on("POST", "/api/auth/refresh", apiError(401, "refresh_token_invalid", "no"));

    await expect(patchChat(api, "7", { cost_cap: 5 })).rejects.toMatchObject({ code: "session_revoked", status: 401 });
    expect(signedOut).toBe(1);
  });

  it("turn the server's error into an ApiError with its code", async () => {
    fake.on("POST", "/api/chats/:id/messages/:mid/refund", apiError(409, "already_refunded", "Already refunded"));
    const failure = await refundReply(api, "7", "2", "wrong").catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(ApiError);
    expect(failure).toMatchObject({ code: "already_refunded", status: 409 });
    expect(fake.requestsTo("POST", "/api/chats/7/messages/2/refund")[0]?.body).toEqual({ reason: "wrong" });
  });

  it("say so when the server cannot be reached", async () => {
    const offline = createApi({ baseUrl: "http://127.0.0.1:1", getToken: getSessionToken, onUnauthorized: () => {} });
    await expect(fetchQuote(offline, "7", "Hi")).rejects.toMatchObject({ code: "network_error", status: 0 });
  });
});

describe("estimates", () => {
  const perReply = (per_reply: number, recent_average: number | null = null): ModelInfo => ({
    id: "m",
    name: "M",
    price: { kind: "per_reply", per_reply },
    recent_average,
  });
  const usage = (recent_average: number | null): ModelInfo => ({
    id: "u",
    name: "U",
    price: { kind: "usage", per_1k_input: 500, per_1k_output: 1000, per_1k_cached: 100, minimum: 1 },
    recent_average,
  });

  it("replies left: the recent average first, then the per-reply price, never a guess", () => {
    expect(repliesLeft(20, perReply(1))).toBe(20);
    expect(repliesLeft(20, perReply(3))).toBe(6);
    expect(repliesLeft(20, perReply(1, 6.5))).toBe(3);
    expect(repliesLeft(20, usage(4))).toBe(5);
    expect(repliesLeft(20, usage(null))).toBeNull();
    expect(repliesLeft(0, perReply(1))).toBe(0);
    expect(repliesLeft(-3, perReply(1))).toBe(0);
  });

  it("a usage price per 1,000 words of reply, rounded up", () => {
    expect(tokensPer1kWords({ kind: "usage", per_1k_input: 1, per_1k_output: 3, per_1k_cached: 0, minimum: 1 })).toBe(4);
    expect(tokensPer1kWords({ kind: "usage", per_1k_input: 1, per_1k_output: 1000, per_1k_cached: 0, minimum: 1 })).toBe(1334);
  });
});
