/**
 * The payment page as a state machine: explicit states, explicit events, one pure
 * reducer. Requests to the server happen in `usePaymentFlow`; their results come back
 * here as events, so every transition can be tested without a browser.
 *
 *   choose ──select──▶ preparing ──intentCreated──▶ checkout ──paid──▶ confirming
 *                         │  ▲                         ▲                  │
 *              intentFailed  retryIntent   settled: failed / settleFailed │
 *                         ▼  │                                            │
 *                    intentFailed          settled ─▶ success | processing | pending | failed
 *
 * A Stripe redirect back lands straight in `confirming` (or `failed`); `buyMore`
 * starts over.
 */
import type { PaymentIntentCreated } from "../../api/types";
import type { TokenOutcome } from "../../components/payment/awaitTokens";

/** A PaymentIntent for a pack; choosing that pack again (same "save card" choice) reuses it. */
export interface ActiveIntent {
  tier: string;
  /** Whether it was asked for with save_card (Stripe's setup_future_usage is set at creation). */
  saveCard: boolean;
  data: PaymentIntentCreated;
}

/** Why the checkout form shows an error: the bank said no, or a request failed. */
export type CheckoutProblem = { kind: "failed" } | { kind: "error"; error: unknown };

export type Phase =
  | { name: "choose" }
  /** Creating a PaymentIntent; only the result of request number `request` counts. */
  | { name: "preparing"; request: number }
  | { name: "intentFailed"; error: unknown }
  | { name: "checkout"; problem: CheckoutProblem | null }
  /** Stripe took the payment; the server is confirming the tokens are in. */
  | { name: "confirming"; paymentIntentId: string }
  | { name: "success"; tokensAdded: number; balance: number }
  /** The bank has not settled yet; the webhook credits later. */
  | { name: "processing"; paymentIntentId: string }
  /** Paid, but the tokens had not arrived by the deadline. */
  | { name: "pending"; paymentIntentId: string }
  /** Confirming failed and there is no checkout to go back to (after a redirect). */
  | { name: "checkFailed"; paymentIntentId: string; error: unknown }
  /** Back from a redirect (or a bank) that failed: nothing was charged, no tokens. */
  | { name: "failed" };

export interface PaymentState {
  /** The pack whose checkout card is open. */
  selected: string | null;
  intent: ActiveIntent | null;
  /** PaymentIntents asked for so far: numbers each request so a stale answer is ignored. */
  requests: number;
  /** The person ticked "save this card": the next PaymentIntent asks Stripe to keep it. */
  saveCard: boolean;
  phase: Phase;
}

export type PaymentEvent =
  | { type: "select"; tier: string }
  | { type: "intentCreated"; request: number; tier: string; saveCard?: boolean; data: PaymentIntentCreated }
  | { type: "saveCard"; save: boolean }
  | { type: "intentFailed"; request: number; error: unknown }
  | { type: "retryIntent" }
  | { type: "changePack" }
  | { type: "paid"; paymentIntentId: string }
  | { type: "settled"; outcome: TokenOutcome }
  | { type: "settleFailed"; error: unknown }
  | { type: "redirectFailed" }
  | { type: "buyMore" };

export const initialPaymentState: PaymentState = {
  selected: null,
  intent: null,
  requests: 0,
  saveCard: false,
  phase: { name: "choose" },
};

function request(state: PaymentState, selected: string): PaymentState {
  const requests = state.requests + 1;
  return { ...state, selected, intent: null, requests, phase: { name: "preparing", request: requests } };
}

function settled(state: PaymentState, paymentIntentId: string, outcome: TokenOutcome): PaymentState {
  switch (outcome.kind) {
    case "credited":
      return { ...state, phase: { name: "success", tokensAdded: outcome.tokensAdded, balance: outcome.balance } };
    case "failed":
      // With a checkout on screen the person can try another card on the same intent.
      return { ...state, phase: state.intent ? { name: "checkout", problem: { kind: "failed" } } : { name: "failed" } };
    case "processing":
      return { ...state, phase: { name: "processing", paymentIntentId } };
    case "pending":
      return { ...state, phase: { name: "pending", paymentIntentId } };
  }
}

export function paymentReducer(state: PaymentState, event: PaymentEvent): PaymentState {
  const { phase } = state;
  // While the server confirms a payment nothing else may start.
  if (phase.name === "confirming" && !["settled", "settleFailed"].includes(event.type)) return state;
  switch (event.type) {
    case "select":
      if (state.intent?.tier === event.tier && state.intent.saveCard === state.saveCard) {
        return { ...state, selected: event.tier, phase: { name: "checkout", problem: null } };
      }
      if (phase.name === "preparing" && state.selected === event.tier) return state;
      return request(state, event.tier);
    case "intentCreated":
      if (phase.name !== "preparing" || phase.request !== event.request) return state;
      return {
        ...state,
        intent: { tier: event.tier, saveCard: event.saveCard ?? false, data: event.data },
        phase: { name: "checkout", problem: null },
      };
    case "saveCard": {
      if (event.save === state.saveCard) return state;
      const next = { ...state, saveCard: event.save };
      // The choice is part of the PaymentIntent: an open checkout gets a new one.
      return state.selected && phase.name !== "choose" ? request(next, state.selected) : next;
    }
    case "intentFailed":
      if (phase.name !== "preparing" || phase.request !== event.request) return state;
      return { ...state, phase: { name: "intentFailed", error: event.error } };
    case "retryIntent":
      return phase.name === "intentFailed" && state.selected ? request(state, state.selected) : state;
    case "changePack":
      return { ...state, selected: null, phase: { name: "choose" } };
    case "paid":
      return { ...state, phase: { name: "confirming", paymentIntentId: event.paymentIntentId } };
    case "settled":
      return phase.name === "confirming" ? settled(state, phase.paymentIntentId, event.outcome) : state;
    case "settleFailed":
      if (phase.name !== "confirming") return state;
      return {
        ...state,
        phase: state.intent
          ? { name: "checkout", problem: { kind: "error", error: event.error } }
          : { name: "checkFailed", paymentIntentId: phase.paymentIntentId, error: event.error },
      };
    case "redirectFailed":
      return { ...state, phase: { name: "failed" } };
    case "buyMore":
      return { ...initialPaymentState, requests: state.requests, saveCard: state.saveCard };
  }
}
