/** Billing answers for component tests, typed by the server's generated schema (see api/billing.ts). */
import type { AutoTopup, Lot, SavedCard, Subscription, SubscriptionPlan } from "../api/billing";
import { now } from "./fakeApi";

const DAY = 24 * 60 * 60 * 1000;

/** An ISO time `days` from now (negative: in the past). */
export function inDays(days: number): string {
  return new Date(Date.now() + days * DAY).toISOString();
}

export const plans: SubscriptionPlan[] = [
  { id: "basic", name: "Basic", price_cents: 499, currency: "usd", monthly_tokens: 300, interval: "month", allotment_expires_after_days: 60 },
  { id: "pro", name: "Pro", price_cents: 999, currency: "usd", monthly_tokens: 1000, interval: "month", allotment_expires_after_days: 60 },
  { id: "premium", name: "Premium", price_cents: 1999, currency: "usd", monthly_tokens: 3000, interval: "month", allotment_expires_after_days: 60 },
];

export function subscription(overrides: Partial<Subscription> = {}): Subscription {
  return {
    id: "sub_1", plan: "pro", status: "active", current_period_start: inDays(-10), current_period_end: inDays(20),
    cancel_at_period_end: false, scheduled_plan: null, problem: null, client_secret: null, portal_available: false,
    ...overrides,
  };
}

export function lot(id: number, overrides: Partial<Lot> = {}): Lot {
  return {
    id, source: "purchase", amount: 100, remaining: 100, priority: 0, expires_at: null, created_at: now, ...overrides,
  };
}

export const visa: SavedCard = { id: "pm_visa", brand: "visa", last4: "4242", exp_month: 4, exp_year: 2030, is_default: true };
export const mastercard: SavedCard = {
  id: "pm_mc", brand: "mastercard", last4: "4444", exp_month: 12, exp_year: 2031, is_default: false,
};

export function autoTopup(overrides: Partial<AutoTopup> = {}): AutoTopup {
  return {
    enabled: false, threshold: 20, tier: "standard", monthly_max_count: 3, monthly_max_amount: 6000,
    payment_method_id: null, state: "off", paused_reason: null, consecutive_failures: 0,
    this_month: { count: 0, amount: 0 }, action_url: null, ...overrides,
  };
}
