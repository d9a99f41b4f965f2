import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApi } from "../../../../client/src/test/fakeApi";
import {
  ConnectionError,
  InsufficientScopeError,
  InsufficientTokensError,
  NotFoundError,
  ServerError,
  createServiceClient,
  createWidgetClient,
} from "./index";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
});
afterEach(async () => {
  await api.close();
});

const posted = { transaction: { id: 7, amount: -3 }, balance: { balance: 7, reserved: 0, available: 7 }, replayed: false };

describe("createServiceClient", () => {
  it("sends the API key and a generated idempotency key, and returns the typed body", async () => {
    api.on("POST", "/api/v1/customers/:id/charges", { json: posted });
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test" });

    const result = await billing.charge("user-1", 3);

    expect(result.balance.available).toBe(7);
    const [sent] = api.requestsTo("POST", "/api/v1/customers/user-1/charges");
    expect(sent?.headers.authorization).toBe("Bearer tbk_test");
    expect(sent?.body).toMatchObject({ amount: 3, idempotency_key: expect.stringMatching(/^tbc_[0-9a-f]{32}$/) });
  });

  it("retries a 503 with the same idempotency key", async () => {
    let calls = 0;
    api.on("POST", "/api/v1/customers/:id/charges", () =>
      ++calls < 3 ? { status: 503, json: { error: { code: "database_unavailable", message: "later" } } } : { json: posted },
    );
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test", backoffMs: 1 });

    await billing.charge("user-1", 3);

    const keys = api.requestsTo("POST", "/api/v1/customers/user-1/charges").map((r) => (r.body as { idempotency_key: string }).idempotency_key);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
  });

  it("gives up after the retries with a typed server error", async () => {
    api.on("GET", "/api/v1/customers/:id/balance", { status: 502, json: { error: { code: "bad_gateway", message: "x" } } });
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test", backoffMs: 1, maxRetries: 2 });

    await expect(billing.balance("user-1")).rejects.toBeInstanceOf(ServerError);
    expect(api.requestsTo("GET", "/api/v1/customers/user-1/balance")).toHaveLength(3);
  });

  it("maps the server's error codes to classes and keeps their fields", async () => {
    api.on("POST", "/api/v1/customers/:id/holds", {
      status: 402,
      json: { error: { code: "insufficient_tokens", message: "no", balance: 2, required: 5 } },
    });
    api.on("POST", "/api/v1/customers/:id/grants", {
      status: 403,
      json: { error: { code: "insufficient_scope", message: "no", required_scope: "grant" } },
    });
    api.on("GET", "/api/v1/holds/:id", { status: 404, json: { error: { code: "hold_not_found", message: "no" } } });
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test" });

    const refused = await billing.createHold("user-1", 5).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(InsufficientTokensError);
    expect(refused).toMatchObject({ status: 402, code: "insufficient_tokens", balance: 2, required: 5 });
    await expect(billing.grant("user-1", 5, "gift")).rejects.toBeInstanceOf(InsufficientScopeError);
    await expect(billing.getHold(9)).rejects.toMatchObject({ code: "hold_not_found" });
    await expect(billing.getHold(9)).rejects.toBeInstanceOf(NotFoundError);
    expect(api.requestsTo("POST", "/api/v1/customers/user-1/holds")).toHaveLength(1); // a 402 is final
  });

  it("puts an external id with reserved characters in one path segment", async () => {
    api.on("GET", "/api/v1/customers/:id/balance", (_r, params) => ({ json: { external_id: params.id, balance: 1, reserved: 0, available: 1 } }));
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test" });

    expect((await billing.balance("org:7|user@x")).external_id).toBe("org:7|user@x");
  });

  it("reports nobody answering as a connection error", async () => {
    const url = api.url;
    await api.close();
    const billing = createServiceClient({ baseUrl: url, apiKey: "tbk_test", backoffMs: 1, maxRetries: 1 });
    await expect(billing.balance("user-1")).rejects.toBeInstanceOf(ConnectionError);
    api = await FakeApi.start();
  });
});

describe("withHold", () => {
  const held = { id: 17, external_id: "user-1", amount: 5, status: "pending", description: "", expires_at: "x", created_at: "x", resolved_at: null, replayed: false };

  it("commits what the work used, and releases when it throws", async () => {
    api.on("POST", "/api/v1/customers/:id/holds", { json: held });
    api.on("POST", "/api/v1/holds/:id/commit", { json: { charged: 2 } });
    api.on("POST", "/api/v1/holds/:id/release", { json: { released: true } });
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test" });

    const reply = await billing.withHold("user-1", 5, async (h) => {
      h.use(2);
      return "a reply";
    });
    await expect(billing.withHold("user-1", 5, async () => {
      throw new Error("model down");
    })).rejects.toThrow("model down");

    expect(reply).toBe("a reply");
    expect(api.requestsTo("POST", "/api/v1/holds/17/commit").map((r) => r.body)).toEqual([{ amount: 2 }]);
    expect(api.requestsTo("POST", "/api/v1/holds/17/release")).toHaveLength(1);
  });

  it("never runs the work when the tokens are not there", async () => {
    api.on("POST", "/api/v1/customers/:id/holds", { status: 402, json: { error: { code: "insufficient_tokens", message: "no", balance: 1, required: 5 } } });
    const billing = createServiceClient({ baseUrl: api.url, apiKey: "tbk_test" });
    let ran = false;
    await expect(billing.withHold("user-1", 5, async () => {
      ran = true;
    })).rejects.toBeInstanceOf(InsufficientTokensError);
    expect(ran).toBe(false);
  });
});

describe("createWidgetClient", () => {
  it("asks for a fresh customer token per request", async () => {
    api.on("GET", "/api/v1/widget/balance", { json: { external_id: "u", balance: 4, reserved: 1, available: 3 } });
    let minted = 0;
    const widget = createWidgetClient({ baseUrl: api.url, token: async () => `token-${++minted}` });

    expect((await widget.balance()).available).toBe(3);
    await widget.balance();
    expect(api.requestsTo("GET", "/api/v1/widget/balance").map((r) => r.headers.authorization)).toEqual([
      "Bearer token-1",
      "Bearer token-2",
    ]);
  });
});
