/** Admin API answers for component tests, shaped like the real app's. */
import type { AdminPayment, AdminRefunds, AdminStats, AdminUser, Transaction, WebhookEvent } from "../api/types";
import { now, type FakeApi } from "./fakeApi";

export const adminMe = { id: 1, username: "root", email: "root@example.com", is_admin: true, created_at: now };

export function adminUser(id: number, username: string, balance: number, spent = 0): AdminUser {
  return {
    id, username, email: `${username}@example.com`, is_admin: false, created_at: now,
    balance, reserved: 0, available: balance, spent,
  };
}

export function entry(id: number, type: string, amount: number, balanceAfter: number, description: string): Transaction {
  return {
    id, transaction_type: type, amount, balance_after: balanceAfter, description,
    stripe_payment_intent_id: null, created_at: now,
  };
}

export function payment(id: number, overrides: Partial<AdminPayment> = {}): AdminPayment {
  return {
    id, user_id: 7, username: "ada", tier: "starter", tokens: 100, amount_cents: 500, currency: "usd",
    stripe_payment_intent_id: `pi_${id}`, status: "succeeded", tokens_credited: 100, reversed_tokens: 0,
    amount_refunded_cents: 0, dispute_status: null, last_error_code: null, created_at: now, updated_at: now,
    stripe_dashboard_url: null, stripe_mismatch: null, ...overrides,
  };
}

export function webhookEvent(id: string, status: WebhookEvent["status"], overrides: Partial<WebhookEvent> = {}): WebhookEvent {
  return {
    id, type: "payment_intent.succeeded", status, attempts: 1, stripe_payment_intent_id: "pi_1",
    last_error: null, received_at: now, processed_at: status === "handled" ? now : null,
    next_attempt_at: null, ...overrides,
  };
}

export function isoDay(offset: number): string {
  const d = new Date();
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() - offset)).toISOString().slice(0, 10);
}

export const busyStats: AdminStats = {
  days: 30,
  daily: [
    { day: isoDay(2), tokens_sold: 500, tokens_used: 40, revenue_cents: 2000 },
    { day: isoDay(1), tokens_sold: 0, tokens_used: 75, revenue_cents: 0 },
    { day: isoDay(0), tokens_sold: 100, tokens_used: 12, revenue_cents: 500 },
  ],
  top_spenders: [
    { user_id: 7, username: "ada", tokens_used: 90 },
    { user_id: 8, username: "grace", tokens_used: 37 },
  ],
};

export const emptyStats: AdminStats = { days: 30, daily: [], top_spenders: [] };

export const emptyRefunds: AdminRefunds = { days: 30, by_reason: [], by_model: [] };

/** Signed in as an admin, with a quiet overview. */
export function asAdmin(api: FakeApi): FakeApi {
  return api
    .on("GET", "/api/auth/me", { json: adminMe })
    .on("GET", "/api/admin/stats", { json: emptyStats })
    .on("GET", "/api/admin/refunds", { json: emptyRefunds });
}
