/**
 * @tokenbank/client — the typed client of tokenbank's service API (`/api/v1`).
 *
 * The types are generated from tokenbank's OpenAPI schema (`openapi.json` beside this
 * package, the `/api/v1` part of it), never written by hand.
 *
 * - `createServiceClient({ baseUrl, apiKey })` — for the host app's server (an API key
 *   never goes to a browser): customers, balances, holds, charges, grants, purchases.
 * - `createWidgetClient({ baseUrl, token })` — for the browser, with a short-lived
 *   customer token the host app signed for its signed-in user.
 * - `createRawClient(...)` — the generated openapi-fetch client itself, for anything else.
 *
 * Every write sends an idempotency key (generated per call when not given) and is retried
 * on a connection error, a 5xx or a 429 with the SAME key, so a retry never charges twice.
 */
import createClient, { type Client } from "openapi-fetch";
import { ConnectionError, errorFrom } from "./errors";
import type { operations, paths } from "./schema";

export * from "./errors";
export type { components, operations, paths } from "./schema";

type Json<Op extends keyof operations> = operations[Op] extends {
  responses: { 200: { content: { "application/json": infer T } } };
}
  ? T
  : operations[Op] extends { responses: { 201: { content: { "application/json": infer U } } } }
    ? U
    : never;

export type Customer = Json<"v1_put_customer">;
export type Balance = Json<"v1_get_balance">;
export type TransactionPage = Json<"v1_list_transactions">;
export type Hold = Json<"v1_create_hold">;
export type Committed = Json<"v1_commit_hold">;
export type Released = Json<"v1_release_hold">;
export type Posted = Json<"v1_create_charge">;
export type Purchase = Json<"v1_create_purchase">;
export type WidgetBalance = Json<"widget_get_balance">;
export type Tier = Json<"widget_get_tiers">[number];
export type WidgetPurchase = Json<"widget_create_purchase">;
export type WidgetConfirmation = Json<"widget_confirm_purchase">;

export type TokenSource = string | (() => string | Promise<string>);

export interface RetryOptions {
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** The first back-off; it doubles per retry, with jitter (default 100 ms). */
  backoffMs?: number;
  /** The longest wait, also for a server's Retry-After (default 5 s). */
  maxBackoffMs?: number;
}

export interface ClientOptions extends RetryOptions {
  baseUrl: string;
  /** Sent as `Authorization: Bearer ...`: an API key (server) or a customer token (browser). */
  auth: TokenSource;
  fetch?: typeof fetch;
}

const RETRYABLE = new Set([429, 500, 502, 503, 504]);

export function idempotencyKey(): string {
  return `tbc_${globalThis.crypto.randomUUID().replaceAll("-", "")}`;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A fetch that authenticates and retries. The request (its body and so its idempotency
 * key) is cloned per attempt, never rebuilt.
 */
function retryingFetch(options: ClientOptions): typeof fetch {
  const base = options.fetch ?? globalThis.fetch.bind(globalThis);
  const maxRetries = options.maxRetries ?? 3;
  const backoffMs = options.backoffMs ?? 100;
  const maxBackoffMs = options.maxBackoffMs ?? 5000;
  return async (input, init) => {
    const token = typeof options.auth === "function" ? await options.auth() : options.auth;
    const request = new Request(input, init);
    request.headers.set("Authorization", `Bearer ${token}`);
    for (let attempt = 1; ; attempt++) {
      let response: Response | null = null;
      let failure: unknown = null;
      try {
        response = await base(request.clone());
      } catch (error) {
        failure = error;
      }
      const retry = attempt <= maxRetries && (failure !== null || RETRYABLE.has(response?.status ?? 0));
      if (!retry) {
        if (response) return response;
        throw new ConnectionError(`tokenbank did not answer: ${String(failure)}`, { cause: failure });
      }
      const retryAfter = Number(response?.headers.get("retry-after"));
      const ceiling = Math.min(maxBackoffMs, backoffMs * 2 ** (attempt - 1));
      const waitMs = Number.isFinite(retryAfter) && response?.headers.has("retry-after")
        ? Math.min(retryAfter * 1000, maxBackoffMs)
        : ceiling / 2 + Math.random() * (ceiling / 2);
      await sleep(waitMs);
    }
  };
}

/** The generated openapi-fetch client for `/api/v1`, authenticating and retrying. */
export function createRawClient(options: ClientOptions): Client<paths> {
  return createClient<paths>({ baseUrl: options.baseUrl.replace(/\/$/, ""), fetch: retryingFetch(options) });
}

/** The data of an openapi-fetch result, or its typed error thrown. */
async function data<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data: body, error, response } = await call;
  if (!response.ok || body === undefined) {
    throw errorFrom(response.status, error ?? null, response.headers.get("retry-after"));
  }
  return body;
}

export interface ServiceClientOptions extends RetryOptions {
  baseUrl: string;
  /** A `tbk_...` key; keep it on your server. */
  apiKey: string;
  fetch?: typeof fetch;
}

/** The service API for the host app's server, by your own user ids (`externalId`). */
export function createServiceClient(options: ServiceClientOptions) {
  const api = createRawClient({ ...options, auth: options.apiKey });
  const customer = (externalId: string) => ({ params: { path: { external_id: externalId } } });
  const hold = (holdId: number) => ({ params: { path: { hold_id: holdId } } });
  const client = {
    raw: api,
    upsertCustomer: (externalId: string, body: { email?: string; name?: string } = {}) =>
      data(api.PUT("/api/v1/customers/{external_id}", { ...customer(externalId), body })),
    balance: (externalId: string) => data(api.GET("/api/v1/customers/{external_id}/balance", customer(externalId))),
    transactions: (externalId: string, query: { limit?: number; before?: number } = {}) =>
      data(
        api.GET("/api/v1/customers/{external_id}/transactions", {
          params: { path: { external_id: externalId }, query },
        }),
      ),
    createHold: (externalId: string, amount: number, opts: { idempotencyKey?: string; ttlS?: number; description?: string } = {}) =>
      data(
        api.POST("/api/v1/customers/{external_id}/holds", {
          ...customer(externalId),
          body: {
            amount,
            idempotency_key: opts.idempotencyKey ?? idempotencyKey(),
            ...(opts.ttlS !== undefined ? { ttl_s: opts.ttlS } : {}),
            ...(opts.description !== undefined ? { description: opts.description } : {}),
          },
        }),
      ),
    getHold: (holdId: number) => data(api.GET("/api/v1/holds/{hold_id}", hold(holdId))),
    commitHold: (holdId: number, amount?: number) =>
      data(api.POST("/api/v1/holds/{hold_id}/commit", { ...hold(holdId), body: amount === undefined ? {} : { amount } })),
    releaseHold: (holdId: number) => data(api.POST("/api/v1/holds/{hold_id}/release", hold(holdId))),
    charge: (externalId: string, amount: number, opts: { idempotencyKey?: string; description?: string } = {}) =>
      data(
        api.POST("/api/v1/customers/{external_id}/charges", {
          ...customer(externalId),
          body: {
            amount,
            idempotency_key: opts.idempotencyKey ?? idempotencyKey(),
            ...(opts.description !== undefined ? { description: opts.description } : {}),
          },
        }),
      ),
    grant: (externalId: string, amount: number, reason: string, opts: { idempotencyKey?: string } = {}) =>
      data(
        api.POST("/api/v1/customers/{external_id}/grants", {
          ...customer(externalId),
          body: { amount, reason, idempotency_key: opts.idempotencyKey ?? idempotencyKey() },
        }),
      ),
    purchase: (externalId: string, tier: string, returnUrl: string, opts: { idempotencyKey?: string } = {}) =>
      data(
        api.POST("/api/v1/customers/{external_id}/purchases", {
          ...customer(externalId),
          body: { tier, return_url: returnUrl, idempotency_key: opts.idempotencyKey ?? idempotencyKey() },
        }),
      ),
  };
  return {
    ...client,
    /**
     * Hold `amount` tokens around `work`: committed when it resolves (all of the hold, or
     * what it passed to `use`; `use(0)` releases), released when it throws. An
     * `InsufficientTokensError` is thrown before `work` runs.
     */
    async withHold<T>(
      externalId: string,
      amount: number,
      work: (held: ActiveHold) => Promise<T>,
      opts: { idempotencyKey?: string; ttlS?: number; description?: string } = {},
    ): Promise<T> {
      const held = await client.createHold(externalId, amount, opts);
      let used: number | undefined;
      const active: ActiveHold = {
        hold: held,
        use: (n: number) => {
          if (!Number.isInteger(n) || n < 0 || n > held.amount) throw new RangeError(`use 0..${held.amount}, not ${n}`);
          used = n;
        },
      };
      let result: T;
      try {
        result = await work(active);
      } catch (error) {
        await client.releaseHold(held.id).catch(() => undefined); // else it expires (ttl_s)
        throw error;
      }
      if (used === 0) await client.releaseHold(held.id);
      else await client.commitHold(held.id, used);
      return result;
    },
  };
}

export interface ActiveHold {
  hold: Hold;
  /** Commit this many tokens instead of the whole hold (0 releases it). */
  use: (amount: number) => void;
}

export type ServiceClient = ReturnType<typeof createServiceClient>;

export interface WidgetClientOptions extends RetryOptions {
  baseUrl: string;
  /** The customer token your server signed (or a function fetching a fresh one). */
  token: TokenSource;
  fetch?: typeof fetch;
}

/** The widget endpoints, for the browser: one customer, by the token your server signed. */
export function createWidgetClient(options: WidgetClientOptions) {
  const api = createRawClient({ ...options, auth: options.token });
  return {
    raw: api,
    balance: () => data(api.GET("/api/v1/widget/balance")),
    transactions: (query: { limit?: number; before?: number } = {}) =>
      data(api.GET("/api/v1/widget/transactions", { params: { query } })),
    tiers: () => data(api.GET("/api/v1/widget/tiers")),
    startPurchase: (tier: string, key: string = idempotencyKey()) =>
      data(api.POST("/api/v1/widget/purchases", { body: { tier, idempotency_key: key } })),
    confirmPurchase: (paymentIntentId: string) =>
      data(api.POST("/api/v1/widget/confirm", { body: { payment_intent_id: paymentIntentId } })),
  };
}

export type WidgetClient = ReturnType<typeof createWidgetClient>;
