/**
 * A real HTTP server on 127.0.0.1 playing the tokenbank API for component
 * tests, so the app's own network code (openapi-fetch, SSE reading) runs
 * unchanged. Each test registers the routes it needs and inspects requests.
 */
import { afterEach, beforeEach } from "vitest";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Message } from "../api/types";

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface Reply {
  status?: number;
  json?: unknown;
  /** Server-sent events, written one by one. */
  sse?: { event: string; data: unknown }[];
}

/** The server's error answer: `{"error": {"code", "message", ...extra}}` with `status`. */
export function apiError(
  status: number,
  code: string,
  message: string,
  extra: Record<string, unknown> = {},
): Reply {
  return { status, json: { error: { code, message, ...extra } } };
}

export type Handler = (
  request: RecordedRequest,
  params: Record<string, string>,
) => Reply | Promise<Reply>;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  handler: Handler;
}

function compile(path: string): { pattern: RegExp; keys: string[] } {
  const keys: string[] = [];
  const source = path.replace(/:(\w+)/g, (_match, key: string) => {
    keys.push(key);
    return "([^/]+)";
  });
  return { pattern: new RegExp(`^${source}$`), keys };
}

async function readBody(stream: AsyncIterable<Buffer>): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8");
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export class FakeApi {
  readonly requests: RecordedRequest[] = [];
  private readonly routes: Route[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeApi> {
    let api: FakeApi | null = null;
    const server = createServer((req, res) => {
      void api?.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    api = new FakeApi(server, `http://127.0.0.1:${port}`);
    return api;
  }

  /** Later registrations win, so a test can override a default. */
  on(method: string, path: string, handler: Handler | Reply): this {
    const { pattern, keys } = compile(path);
    const fn: Handler = typeof handler === "function" ? handler : () => handler;
    this.routes.unshift({ method, pattern, keys, handler: fn });
    return this;
  }

  requestsTo(method: string, path: string): RecordedRequest[] {
    return this.requests.filter((r) => r.method === method && r.path === path);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) {
    const url = new URL(req.url ?? "/", this.url);
    const request: RecordedRequest = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: await readBody(req),
    };
    this.requests.push(request);
    for (const route of this.routes) {
      if (route.method !== request.method) continue;
      const match = route.pattern.exec(request.path);
      if (!match) continue;
      const params = Object.fromEntries(route.keys.map((key, i) => [key, decodeURIComponent(match[i + 1] ?? "")]));
      const reply = await route.handler(request, params);
      if (reply.sse) {
        res.writeHead(reply.status ?? 200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
        for (const event of reply.sse) {
          res.write(`event: ${event.event}\r\ndata: ${JSON.stringify(event.data)}\r\n\r\n`);
        }
        res.end();
        return;
      }
      res.writeHead(reply.status ?? 200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(reply.json ?? null));
      return;
    }
    res.writeHead(404, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ detail: "Not Found" }));
  }
}

/** A promise the test resolves when it wants the server to answer. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

export const now = "2025-06-01T12:00:00Z";

/** A chat message as the server sends it (a reply's defaults: finished, on "mini", price book 3). */
export function chatMessage(fields: Pick<Message, "id" | "role" | "content"> & Partial<Message>): Message {
  const mine = fields.role === "user";
  return {
    created_at: now,
    tokens_charged: 0,
    model: mine ? null : "mini",
    interrupted: false,
    refunded: false,
    cost: null,
    finish_reason: mine ? null : "stop",
    price_version: mine ? null : 3,
    ...fields,
  };
}

export function balance(available: number) {
  return { user_id: 1, balance: available, reserved: 0, available, created_at: now, updated_at: now };
}

export const standardTiers = {
  starter: { tokens: 100, price: 500, currency: "usd", description: "Try it out" },
  standard: { tokens: 500, price: 2000, currency: "usd", description: "For regular chats" },
  premium: { tokens: 1500, price: 5000, currency: "usd", description: "For power users" },
};

/** Routes every signed-in page needs, with ordinary answers. */
export function withDefaults(api: FakeApi, available = 42): FakeApi {
  return api
    .on("GET", "/api/payment/user/tokens", { json: balance(available) })
    .on("GET", "/api/auth/me", {
      json: { id: 1, username: "ada", email: "ada@example.com", is_admin: false, created_at: now },
    })
    .on("GET", "/api/payment/pricing-tiers", { json: standardTiers })
    .on("GET", "/api/payment/config", {
      json: {
        publishable_key: "pk_test_local",
        mode: "simulated",
        configured: true,
        stripe_js_url: "http://127.0.0.1:1/stripe.js",
        test_cards: [
          { number: "4242 4242 4242 4242", brand: "visa", description: "Succeeds" },
          { number: "4000 0000 0000 9995", brand: "visa", description: "Declined: insufficient funds" },
        ],
      },
    })
    .on("GET", "/api/chats/config", {
      json: { reply_cost_tokens: 1, model: "offline-echo", provider: "offline", offline: true, max_message_chars: 4000 },
    })
    .on("GET", "/api/chats", { json: [] })
    .on("GET", "/api/payment/user/lots", { json: { items: [] } })
    .on("GET", "/api/notifications", { json: { items: [], unread: 0, next_before: null } })
    .on("GET", "/api/notifications/settings", { json: { low_balance_thresholds: [], email_alerts: true } })
    .on("GET", "/api/payment/saved-payment-methods", { json: { items: [] } })
    .on("GET", "/api/payment/subscription-plans", { json: { items: [] } })
    .on("GET", "/api/payment/user/subscription", { json: { subscription: null } });
}

/**
 * A fake API with the default routes for each test of the file, closed after it:
 * `let api: FakeApi; fakeApiPerTest((started) => { api = started; });`
 */
export function fakeApiPerTest(onStart: (api: FakeApi) => void, available?: number): void {
  let api: FakeApi | null = null;
  beforeEach(async () => {
    api = withDefaults(await FakeApi.start(), available);
    onStart(api);
  });
  afterEach(async () => {
    await api?.close();
    api = null;
  });
}
