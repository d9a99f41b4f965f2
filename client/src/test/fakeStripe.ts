/**
 * A stand-in for the Stripe.js object, handed to <Elements> at the component
 * boundary. It mounts a placeholder instead of Stripe's iframe and answers
 * `confirmPayment` with whatever each test queues.
 */
import type { PaymentIntentResult, Stripe } from "@stripe/stripe-js";
import { vi } from "vitest";

export type ConfirmAnswer = PaymentIntentResult | Promise<PaymentIntentResult>;

export function declined(declineCode: string, message: string): PaymentIntentResult {
  return {
    error: { type: "card_error", code: "card_declined", decline_code: declineCode, message },
  } as PaymentIntentResult;
}

export function paid(id: string, status: "succeeded" | "processing" = "succeeded"): PaymentIntentResult {
  return { paymentIntent: { id, status, object: "payment_intent" } } as PaymentIntentResult;
}

/**
 * `answers` answer confirmPayment in turn; `nextActions` answer handleNextAction (the
 * bank's 3D Secure check for a PaymentIntent the server confirmed).
 */
export function createFakeStripe(answers: ConfirmAnswer[] = [], nextActions: ConfirmAnswer[] = []) {
  const element = {
    mount: vi.fn((node: HTMLElement | string) => {
      const target = typeof node === "string" ? document.querySelector(node) : node;
      if (target) target.innerHTML = '<div data-testid="fake-payment-element">Card details</div>';
    }),
    on: vi.fn(),
    off: vi.fn(),
    once: vi.fn(),
    update: vi.fn(),
    destroy: vi.fn(),
    unmount: vi.fn(),
    focus: vi.fn(),
    blur: vi.fn(),
    clear: vi.fn(),
    collapse: vi.fn(),
  };
  const elements = {
    create: vi.fn(() => element),
    getElement: vi.fn(() => element),
    update: vi.fn(),
    submit: vi.fn(async () => ({})),
    fetchUpdates: vi.fn(async () => ({})),
  };
  const confirmPayment = vi.fn(
    async (): Promise<PaymentIntentResult> =>
      answers.shift() ?? { error: { type: "api_error", message: "No answer queued" } } as PaymentIntentResult,
  );
  const handleNextAction = vi.fn(
    async (_options: { clientSecret: string }): Promise<PaymentIntentResult> =>
      nextActions.shift() ?? { error: { type: "api_error", message: "No answer queued" } } as PaymentIntentResult,
  );
  const stripe = {
    elements: vi.fn(() => elements),
    handleNextAction,
    createToken: vi.fn(),
    createPaymentMethod: vi.fn(),
    confirmCardPayment: vi.fn(),
    confirmPayment,
    registerAppInfo: vi.fn(),
    _registerWrapper: vi.fn(),
  };
  return { stripe: stripe as unknown as Stripe, confirmPayment, handleNextAction, elements, element };
}
