import type { I18n } from "../../i18n/I18nProvider";
import {
  fetchSubscription,
  type PlanId,
  type Subscription,
  type SubscriptionPlan,
  type SubscriptionStatus,
} from "../../api/billing";
import type { Api } from "../../api/client";
import { ApiError } from "../../api/errors";
import { formatDate } from "../../lib/format";
import { sleep } from "../../lib/sleep";

export function planName(i18n: Pick<I18n, "t" | "has">, id: string, fallback?: string): string {
  const key = `plan.${id}`;
  if (i18n.has(key)) return i18n.t(key);
  return fallback ?? id.charAt(0).toUpperCase() + id.slice(1);
}

/**
 * The end of the subscription's current period as a date. Stripe has no period for a
 * subscription whose first payment is not through yet (the server sends null): a dash.
 */
export function formatPeriodEnd(subscription: Pick<Subscription, "current_period_end">, locale: string): string {
  return subscription.current_period_end === null ? "—" : formatDate(subscription.current_period_end, locale);
}

/**
 * Statuses in which the person has a plan (and must change it rather than subscribe again:
 * the server refuses a second subscription while one is in any of these).
 */
export const LIVE_STATUSES: ReadonlySet<SubscriptionStatus> = new Set(["active", "trialing", "past_due", "unpaid", "paused"]);

export function hasLivePlan(subscription: Subscription | null | undefined): subscription is Subscription {
  return !!subscription && LIVE_STATUSES.has(subscription.status);
}

/** A plan's rank by price, to tell an upgrade (now, prorated) from a downgrade (at renewal). */
export function isUpgrade(plans: readonly SubscriptionPlan[], from: PlanId, to: PlanId): boolean {
  const price = (id: PlanId) => plans.find((plan) => plan.id === id)?.price_cents ?? 0;
  return price(to) > price(from);
}

export type SubscriptionOutcome = { kind: "active"; subscription: Subscription } | { kind: "pending" };

/**
 * After Stripe took the first payment the server activates the subscription (and grants
 * the month's tokens) from Stripe's state: ask until it is active or the deadline passes.
 */
export async function awaitSubscription(
  api: Api,
  { deadlineMs = 15_000, delayMs = 700 }: { deadlineMs?: number; delayMs?: number } = {},
): Promise<SubscriptionOutcome> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    try {
      const { subscription } = await fetchSubscription(api);
      if (subscription && (subscription.status === "active" || subscription.status === "trialing")) {
        return { kind: "active", subscription };
      }
    } catch (error) {
      if (!(error instanceof ApiError) || (error.status !== 0 && error.status < 500)) throw error;
    }
    if (Date.now() + delayMs > deadline) return { kind: "pending" };
    await sleep(delayMs);
  }
}
