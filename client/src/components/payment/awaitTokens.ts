/**
 * After Stripe says the card went through, the server must confirm that the
 * tokens are in the account before the page may say "success". This asks the
 * server (POST confirm-payment, which syncs with Stripe and credits at most
 * once) until the tokens are in, the payment is known to be processing or
 * failed, or the deadline passes.
 */
import { unwrap, type Api } from "../../api/client";
import { ApiError } from "../../api/errors";
import { fetchPayment } from "../../api/queries";
import type { ConfirmPaymentResult } from "../../api/types";
import { sleep } from "../../lib/sleep";

export type TokenOutcome =
  | { kind: "credited"; tokensAdded: number; balance: number }
  /** The bank has not settled yet; the webhook will credit later. */
  | { kind: "processing" }
  /** Paid, but the tokens did not show up before the deadline. */
  | { kind: "pending" }
  | { kind: "failed"; status: string };

export interface AwaitOptions {
  deadlineMs?: number;
  firstDelayMs?: number;
  maxDelayMs?: number;
}

/** Statuses after which no tokens will come for this attempt: the server reports a
 * declined or failed bank debit as "failed" (Stripe itself says requires_payment_method). */
export const FAILED_STATUSES = new Set(["failed", "requires_payment_method", "canceled"]);

function confirmPayment(api: Api, paymentIntentId: string): Promise<ConfirmPaymentResult> {
  return unwrap(
    api.client.POST("/api/payment/confirm-payment", { body: { payment_intent_id: paymentIntentId } }),
  );
}

/** Only failures that may heal on their own are worth asking again. */
function isTransient(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 0 || error.status >= 500 || error.status === 429);
}

async function creditedTokens(api: Api, paymentIntentId: string, confirm: ConfirmPaymentResult) {
  if (confirm.tokens_added > 0) return confirm.tokens_added;
  // Another path (the webhook) may have credited first; the payment record says so.
  try {
    const payment = await fetchPayment(api, paymentIntentId);
    return payment.tokens_credited ? payment.tokens : null;
  } catch {
    return null;
  }
}

export async function awaitTokens(
  api: Api,
  paymentIntentId: string,
  { deadlineMs = 15_000, firstDelayMs = 500, maxDelayMs = 2_000 }: AwaitOptions = {},
): Promise<TokenOutcome> {
  const deadline = Date.now() + deadlineMs;
  let delay = firstDelayMs;
  for (;;) {
    try {
      const confirm = await confirmPayment(api, paymentIntentId);
      if (confirm.status === "succeeded") {
        const tokens = await creditedTokens(api, paymentIntentId, confirm);
        if (tokens !== null) return { kind: "credited", tokensAdded: tokens, balance: confirm.balance };
      } else if (confirm.status === "processing") {
        return { kind: "processing" };
      } else if (FAILED_STATUSES.has(confirm.status)) {
        return { kind: "failed", status: confirm.status };
      }
    } catch (error) {
      if (!isTransient(error)) throw error;
    }
    if (Date.now() + delay > deadline) return { kind: "pending" };
    await sleep(delay);
    delay = Math.min(Math.round(delay * 1.6), maxDelayMs);
  }
}
