/**
 * Subscriptions, token lots, saved cards, auto top-up and notifications.
 *
 * These types are HAND-WRITTEN from the shapes agreed with the server for this
 * release, because the server routes land at the same time as this client. When
 * the server's schema includes them (`make client-types`), replace each type below
 * with its generated `OkJson<...>` / `components["schemas"][...]` twin and the
 * untyped `call` with `api.client.GET|POST|PUT|DELETE` on the typed paths. Nothing
 * else in the client needs to change: every page imports these names from here.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useSessionToken } from "../auth/session";
import { useApi } from "./ApiProvider";
import { unwrap, type Api } from "./client";
import { queryKeys, refreshTokenState } from "./queries";
import type { PaymentIntentCreated } from "./types";

// ---------------------------------------------------------------- types

export type LotSource = "purchase" | "allotment" | "grant" | "adjustment" | "reinstatement";

export interface Lot {
  id: number;
  source: LotSource;
  amount: number;
  remaining: number;
  priority: number;
  /** ISO time; null for a lot that never expires. */
  expires_at: string | null;
  created_at: string;
}

export interface LotList {
  items: Lot[];
}

export type PlanId = "basic" | "pro" | "premium";

export interface SubscriptionPlan {
  id: PlanId;
  name: string;
  price_cents: number;
  currency: string;
  monthly_tokens: number;
  interval: "month";
  allotment_expires_after_days: number;
}

export interface SubscriptionPlanList {
  items: SubscriptionPlan[];
}

export type SubscriptionStatus =
  | "incomplete"
  | "active"
  | "past_due"
  | "unpaid"
  | "canceled"
  | "incomplete_expired"
  | "trialing";

export interface Subscription {
  id: string;
  plan: PlanId;
  status: SubscriptionStatus;
  current_period_start: string;
  current_period_end: string;
  cancel_at_period_end: boolean;
  /** The plan a downgrade switches to at the period's end. */
  scheduled_plan: PlanId | null;
  problem: null | "payment_failed" | "requires_action";
  /** Finishes a failed or 3D Secure payment in the page. */
  client_secret: string | null;
  portal_available: boolean;
}

export interface SubscriptionEnvelope {
  subscription: Subscription | null;
}

export interface SubscriptionCreated {
  subscription_id: string;
  client_secret: string | null;
  status: SubscriptionStatus;
}

export interface SavedCard {
  id: string;
  brand: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  is_default: boolean;
}

export interface SavedCardList {
  items: SavedCard[];
}

export interface PaymentIntentBody {
  tier: string;
  payment_method_id?: string;
  save_card?: boolean;
}

/** create-payment-intent's answer; `status` says where a saved-card payment got to. */
export type PaymentIntentWithStatus = PaymentIntentCreated & {
  status?: "succeeded" | "requires_action" | "processing" | "requires_payment_method" | string;
};

export type AutoTopupState = "off" | "active" | "paused";

export interface AutoTopupSettings {
  enabled: boolean;
  threshold: number;
  tier: string;
  monthly_max_count: number;
  /** Cents. */
  monthly_max_amount: number;
  payment_method_id?: string | null;
}

export interface AutoTopup extends AutoTopupSettings {
  payment_method_id: string | null;
  state: AutoTopupState;
  paused_reason: string | null;
  consecutive_failures: number;
  this_month: { count: number; amount: number };
  action_url: string | null;
}

export type NotificationKind =
  | "balance_low"
  | "topup_succeeded"
  | "topup_failed"
  | "topup_paused"
  | "topup_disabled"
  | "lots_expiring"
  | "renewal_failed"
  | "subscription_renewed";

export interface AppNotification {
  id: number;
  kind: NotificationKind | string;
  title: string;
  body: string;
  data: Record<string, unknown>;
  created_at: string;
  read_at: string | null;
}

export interface NotificationPage {
  items: AppNotification[];
  unread: number;
  next_before: number | string | null;
}

export interface NotificationSettings {
  /** At most three. */
  low_balance_thresholds: number[];
  email_alerts: boolean;
}

// ---------------------------------------------------------------- transport

type Method = "GET" | "POST" | "PUT" | "DELETE";
interface UntypedResult {
  data?: unknown;
  error?: unknown;
  response: Response;
}
type UntypedCall = (path: string, init?: { body?: unknown; headers?: Record<string, string> }) => Promise<UntypedResult>;

/**
 * A call through the app's own client (its auth header and session renewal), for a
 * path the generated schema does not list yet.
 */
export function call<T>(api: Api, method: Method, path: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
  const client = api.client as unknown as Record<Method, UntypedCall>;
  const init = { ...(body === undefined ? {} : { body }), ...(headers ? { headers } : {}) };
  return unwrap(client[method](path, init) as Promise<{ data?: T; error?: unknown; response: Response }>);
}

// ---------------------------------------------------------------- requests

export const billingKeys = {
  lots: queryKeys.lots,
  plans: ["subscriptionPlans"] as const,
  subscription: ["subscription"] as const,
  savedCards: ["savedCards"] as const,
  autoTopup: ["autoTopup"] as const,
  notifications: ["notifications"] as const,
  notificationSettings: ["notificationSettings"] as const,
  adminLots: (userId: number) => ["admin", "user", userId, "lots"] as const,
  adminSubscription: (userId: number) => ["admin", "user", userId, "subscription"] as const,
};

export const fetchLots = (api: Api) => call<LotList>(api, "GET", "/api/payment/user/lots");
export const fetchPlans = (api: Api) => call<SubscriptionPlanList>(api, "GET", "/api/payment/subscription-plans");
export const fetchSubscription = (api: Api) => call<SubscriptionEnvelope>(api, "GET", "/api/payment/user/subscription");

export function createSubscription(api: Api, plan: PlanId, idempotencyKey: string) {
  return call<SubscriptionCreated>(api, "POST", "/api/payment/create-subscription", { plan }, { "Idempotency-Key": idempotencyKey });
}

export function createPaymentIntent(api: Api, body: PaymentIntentBody, idempotencyKey: string) {
  return call<PaymentIntentWithStatus>(api, "POST", "/api/payment/create-payment-intent", body, {
    "Idempotency-Key": idempotencyKey,
  });
}

// ---------------------------------------------------------------- hooks

export function useLots() {
  const api = useApi();
  const token = useSessionToken();
  return useQuery({ queryKey: billingKeys.lots, queryFn: () => fetchLots(api), enabled: token !== null });
}

export function usePlans() {
  const api = useApi();
  return useQuery({ queryKey: billingKeys.plans, queryFn: () => fetchPlans(api), staleTime: 10 * 60_000 });
}

export function useSubscription() {
  const api = useApi();
  return useQuery({ queryKey: billingKeys.subscription, queryFn: () => fetchSubscription(api) });
}

/** After anything that changes a subscription: it, the lots and the balance are stale. */
export async function refreshBilling(queryClient: ReturnType<typeof useQueryClient>): Promise<void> {
  await Promise.all([
    queryClient.invalidateQueries({ queryKey: billingKeys.subscription }),
    refreshTokenState(queryClient),
  ]);
}

/** change plan / cancel at period end / resume: each answers with the Subscription. */
export function useSubscriptionAction() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (action: { kind: "update"; plan: PlanId } | { kind: "cancel" } | { kind: "resume" }) =>
      action.kind === "update"
        ? call<Subscription>(api, "POST", "/api/payment/update-subscription", { plan: action.plan })
        : call<Subscription>(api, "POST", `/api/payment/${action.kind}-subscription`),
    onSuccess: (subscription) => {
      queryClient.setQueryData<SubscriptionEnvelope>(billingKeys.subscription, { subscription });
    },
    onSettled: () => refreshBilling(queryClient),
  });
}

export function useCustomerPortal() {
  const api = useApi();
  return useMutation({
    mutationFn: () => call<{ url: string }>(api, "POST", "/api/payment/customer-portal"),
    onSuccess: ({ url }) => window.location.assign(url),
  });
}

export function useSavedCards() {
  const api = useApi();
  return useQuery({
    queryKey: billingKeys.savedCards,
    queryFn: () => call<SavedCardList>(api, "GET", "/api/payment/saved-payment-methods"),
  });
}

export function useRemoveCard() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (id: string) =>
      call<null>(api, "DELETE", `/api/payment/saved-payment-methods/${encodeURIComponent(id)}`),
    onSettled: () =>
      Promise.all([
        queryClient.invalidateQueries({ queryKey: billingKeys.savedCards }),
        queryClient.invalidateQueries({ queryKey: billingKeys.autoTopup }),
      ]),
  });
}

export function useAutoTopup() {
  const api = useApi();
  return useQuery({
    queryKey: billingKeys.autoTopup,
    queryFn: () => call<AutoTopup>(api, "GET", "/api/payment/auto-topup"),
  });
}

export function useSaveAutoTopup() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (settings: AutoTopupSettings) => call<AutoTopup>(api, "PUT", "/api/payment/auto-topup", settings),
    onSuccess: (saved) => queryClient.setQueryData(billingKeys.autoTopup, saved),
  });
}

export const NOTIFICATIONS_POLL_MS = 60_000;

/** The bell's list and unread count: asked for every minute and whenever the window gets focus. */
export function useNotifications() {
  const api = useApi();
  const token = useSessionToken();
  return useQuery({
    queryKey: billingKeys.notifications,
    queryFn: () => call<NotificationPage>(api, "GET", "/api/notifications?limit=20"),
    enabled: token !== null,
    refetchInterval: NOTIFICATIONS_POLL_MS,
    refetchIntervalInBackground: false,
    refetchOnWindowFocus: true,
    staleTime: 15_000,
  });
}

export function useMarkNotificationsRead() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    /** No ids marks every notification read. */
    mutationFn: (ids?: number[]) =>
      call<{ unread: number }>(api, "POST", "/api/notifications/read", ids ? { ids } : {}),
    onSuccess: ({ unread }, ids) => {
      const readAt = new Date().toISOString();
      queryClient.setQueryData<NotificationPage>(billingKeys.notifications, (page) =>
        page
          ? {
              ...page,
              unread,
              items: page.items.map((item) =>
                item.read_at === null && (!ids || ids.includes(item.id)) ? { ...item, read_at: readAt } : item,
              ),
            }
          : page,
      );
    },
  });
}

export function useNotificationSettings() {
  const api = useApi();
  return useQuery({
    queryKey: billingKeys.notificationSettings,
    queryFn: () => call<NotificationSettings>(api, "GET", "/api/notifications/settings"),
  });
}

export function useSaveNotificationSettings() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (settings: NotificationSettings) =>
      call<NotificationSettings>(api, "PUT", "/api/notifications/settings", settings),
    onSuccess: (saved) => queryClient.setQueryData(billingKeys.notificationSettings, saved),
  });
}

export function useAdminLots(userId: number) {
  const api = useApi();
  return useQuery({
    queryKey: billingKeys.adminLots(userId),
    queryFn: () => call<LotList>(api, "GET", `/api/admin/users/${userId}/lots`),
  });
}

export function useAdminSubscription(userId: number) {
  const api = useApi();
  return useQuery({
    queryKey: billingKeys.adminSubscription(userId),
    queryFn: () => call<SubscriptionEnvelope>(api, "GET", `/api/admin/users/${userId}/subscription`),
  });
}

// ---------------------------------------------------------------- derived

export const EXPIRING_SOON_DAYS = 7;
const DAY_MS = 24 * 60 * 60 * 1000;

export function isActiveLot(lot: Lot, now: number = Date.now()): boolean {
  return lot.remaining > 0 && (lot.expires_at === null || Date.parse(lot.expires_at) > now);
}

/** Active lots that expire within `days`, soonest first. */
export function expiringLots(lots: readonly Lot[], days = EXPIRING_SOON_DAYS, now: number = Date.now()): Lot[] {
  return lots
    .filter((lot) => isActiveLot(lot, now) && lot.expires_at !== null && Date.parse(lot.expires_at) - now <= days * DAY_MS)
    .sort((a, b) => Date.parse(a.expires_at ?? "") - Date.parse(b.expires_at ?? ""));
}

/** What is left of the subscription's allotments, and when the soonest of them expires. */
export function allotmentLeft(lots: readonly Lot[], now: number = Date.now()): { remaining: number; expiresAt: string | null } {
  const active = lots.filter((lot) => lot.source === "allotment" && isActiveLot(lot, now));
  const remaining = active.reduce((sum, lot) => sum + lot.remaining, 0);
  const soonest = active
    .map((lot) => lot.expires_at)
    .filter((at): at is string => at !== null)
    .sort((a, b) => Date.parse(a) - Date.parse(b))[0];
  return { remaining, expiresAt: soonest ?? null };
}


