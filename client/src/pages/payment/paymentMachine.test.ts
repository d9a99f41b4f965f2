import { describe, expect, it } from "vitest";
import type { PaymentIntentCreated } from "../../api/types";
import {
  initialPaymentState,
  paymentReducer,
  type PaymentEvent,
  type PaymentState,
  type Phase,
} from "./paymentMachine";

function intentFor(tier: string): PaymentIntentCreated {
  return {
    client_secret: `pi_${tier}_secret`,
    payment_intent_id: `pi_${tier}`,
    amount: 500,
    currency: "usd",
    tokens: 100,
    publishable_key: "pk_test_local",
  } as PaymentIntentCreated;
}

function run(...events: PaymentEvent[]): PaymentState {
  return events.reduce(paymentReducer, initialPaymentState);
}

const select = (tier: string): PaymentEvent => ({ type: "select", tier });
const created = (request: number, tier: string): PaymentEvent => ({
  type: "intentCreated",
  request,
  tier,
  data: intentFor(tier),
});
const inCheckout = (tier = "starter") => run(select(tier), created(1, tier));
const confirming = (tier = "starter") => paymentReducer(inCheckout(tier), { type: "paid", paymentIntentId: `pi_${tier}` });

describe("choose → preparing", () => {
  it("select opens the pack and asks for a PaymentIntent (request 1)", () => {
    const state = run(select("starter"));
    expect(state.selected).toBe("starter");
    expect(state.intent).toBeNull();
    expect(state.phase).toEqual({ name: "preparing", request: 1 });
  });

  it("select of the pack already being prepared does not ask again", () => {
    const once = run(select("starter"));
    expect(paymentReducer(once, select("starter"))).toBe(once);
  });

  it("select of another pack while preparing starts a new request", () => {
    const state = run(select("starter"), select("premium"));
    expect(state.selected).toBe("premium");
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
  });
});

describe("preparing → checkout | intentFailed", () => {
  it("intentCreated for the request in flight opens the checkout", () => {
    const state = inCheckout();
    expect(state.intent).toEqual({ tier: "starter", saveCard: false, data: intentFor("starter") });
    expect(state.phase).toEqual({ name: "checkout", problem: null });
  });

  it("an answer to an older request is ignored (the person chose another pack)", () => {
    const state = run(select("starter"), select("premium"), created(1, "starter"));
    expect(state.intent).toBeNull();
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
  });

  it("an answer that arrives after changePack is ignored", () => {
    const state = run(select("starter"), { type: "changePack" }, created(1, "starter"));
    expect(state.intent).toBeNull();
    expect(state.phase).toEqual({ name: "choose" });
  });

  it("intentFailed shows the error for the pack", () => {
    const error = new Error("down");
    const state = run(select("starter"), { type: "intentFailed", request: 1, error });
    expect(state.phase).toEqual({ name: "intentFailed", error });
    expect(state.selected).toBe("starter");
  });

  it("a failure of an older request is ignored", () => {
    const state = run(select("starter"), select("premium"), { type: "intentFailed", request: 1, error: "x" });
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
  });

  it("retryIntent after a failure asks again with a new request", () => {
    const state = run(select("starter"), { type: "intentFailed", request: 1, error: "x" }, { type: "retryIntent" });
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
    expect(state.selected).toBe("starter");
  });

  it("retryIntent when nothing failed changes nothing", () => {
    const state = inCheckout();
    expect(paymentReducer(state, { type: "retryIntent" })).toBe(state);
  });
});

describe("checkout", () => {
  it("changePack closes the checkout but keeps the PaymentIntent for that pack", () => {
    const state = paymentReducer(inCheckout(), { type: "changePack" });
    expect(state.selected).toBeNull();
    expect(state.phase).toEqual({ name: "choose" });
    expect(state.intent?.tier).toBe("starter");
  });

  it("select of the pack that already has a PaymentIntent reuses it without a request", () => {
    const state = run(select("starter"), created(1, "starter"), { type: "changePack" }, select("starter"));
    expect(state.requests).toBe(1);
    expect(state.phase).toEqual({ name: "checkout", problem: null });
  });

  it("select of another pack drops the old PaymentIntent and asks for a new one", () => {
    const state = paymentReducer(inCheckout(), select("premium"));
    expect(state.intent).toBeNull();
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
  });

  it("paid starts confirming with the server", () => {
    expect(confirming().phase).toEqual({ name: "confirming", paymentIntentId: "pi_starter" });
  });
});

describe("confirming", () => {
  it("nothing but the server's answer leaves it (packs, change pack, buy more)", () => {
    const state = confirming();
    for (const event of [select("premium"), { type: "changePack" }, { type: "buyMore" }, { type: "retryIntent" }] as PaymentEvent[]) {
      expect(paymentReducer(state, event)).toBe(state);
    }
  });

  const outcomes: [string, PaymentEvent, Phase][] = [
    ["credited → success", { type: "settled", outcome: { kind: "credited", tokensAdded: 100, balance: 110 } },
      { name: "success", tokensAdded: 100, balance: 110 }],
    ["processing → processing", { type: "settled", outcome: { kind: "processing" } },
      { name: "processing", paymentIntentId: "pi_starter" }],
    ["pending → pending", { type: "settled", outcome: { kind: "pending" } },
      { name: "pending", paymentIntentId: "pi_starter" }],
    ["failed with a checkout → back to the checkout, saying it failed", { type: "settled", outcome: { kind: "failed", status: "failed" } },
      { name: "checkout", problem: { kind: "failed" } }],
  ];
  it.each(outcomes)("settled: %s", (_name, event, phase) => {
    expect(paymentReducer(confirming(), event).phase).toEqual(phase);
  });

  it("settled: failed after a redirect (no checkout) → failed", () => {
    const state = run({ type: "paid", paymentIntentId: "pi_x" }, { type: "settled", outcome: { kind: "failed", status: "canceled" } });
    expect(state.phase).toEqual({ name: "failed" });
  });

  it("settleFailed with a checkout → back to the checkout with the error", () => {
    const error = new Error("offline");
    expect(paymentReducer(confirming(), { type: "settleFailed", error }).phase).toEqual({
      name: "checkout",
      problem: { kind: "error", error },
    });
  });

  it("settleFailed after a redirect → checkFailed, which can check again", () => {
    const error = new Error("offline");
    const state = run({ type: "paid", paymentIntentId: "pi_x" }, { type: "settleFailed", error });
    expect(state.phase).toEqual({ name: "checkFailed", paymentIntentId: "pi_x", error });
    const again = paymentReducer(state, { type: "paid", paymentIntentId: "pi_x" });
    expect(again.phase).toEqual({ name: "confirming", paymentIntentId: "pi_x" });
  });

  it("a late answer when not confirming is ignored", () => {
    const state = inCheckout();
    expect(paymentReducer(state, { type: "settled", outcome: { kind: "pending" } })).toBe(state);
    expect(paymentReducer(state, { type: "settleFailed", error: "x" })).toBe(state);
  });
});

describe("after", () => {
  it("redirectFailed shows the failure", () => {
    expect(run({ type: "redirectFailed" }).phase).toEqual({ name: "failed" });
  });

  it("processing → check again → confirming", () => {
    const state = paymentReducer(confirming(), { type: "settled", outcome: { kind: "processing" } });
    expect(paymentReducer(state, { type: "paid", paymentIntentId: "pi_starter" }).phase.name).toBe("confirming");
  });

  it("buyMore from success starts over, keeping the request count", () => {
    const success = paymentReducer(confirming(), {
      type: "settled",
      outcome: { kind: "credited", tokensAdded: 100, balance: 110 },
    });
    const state = paymentReducer(success, { type: "buyMore" });
    expect(state).toEqual({ ...initialPaymentState, requests: 1 });
    // A new pack asks with a new request number.
    expect(paymentReducer(state, select("starter")).phase).toEqual({ name: "preparing", request: 2 });
  });
});

describe("save this card", () => {
  it("ticking it before choosing a pack only remembers the choice", () => {
    const state = run({ type: "saveCard", save: true });
    expect(state.saveCard).toBe(true);
    expect(state.requests).toBe(0);
    expect(state.phase).toEqual({ name: "choose" });
  });

  it("ticking it with a checkout open asks for a new PaymentIntent (setup_future_usage is set at creation)", () => {
    const state = paymentReducer(inCheckout(), { type: "saveCard", save: true });
    expect(state.saveCard).toBe(true);
    expect(state.intent).toBeNull();
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
    const ready = paymentReducer(state, { type: "intentCreated", request: 2, tier: "starter", saveCard: true, data: intentFor("starter") });
    expect(ready.intent?.saveCard).toBe(true);
    // Ticking the same again changes nothing.
    expect(paymentReducer(ready, { type: "saveCard", save: true })).toBe(ready);
  });

  it("an intent made without it is not reused for a pack chosen with it", () => {
    let state = inCheckout("starter");
    state = paymentReducer(state, { type: "changePack" });
    state = paymentReducer(state, { type: "saveCard", save: true });
    state = paymentReducer(state, select("starter"));
    expect(state.phase).toEqual({ name: "preparing", request: 2 });
  });

  it("cannot be changed while the server confirms a payment", () => {
    const state = confirming();
    expect(paymentReducer(state, { type: "saveCard", save: true })).toBe(state);
  });
});
