/**
 * Subscriptions, token lots, saved cards, auto top-up and notifications.
 *
 * Every shape is the server's, from the generated schema, and every request goes through
 * the typed client.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useSessionToken } from "../auth/session";
import { useApi } from "./ApiProvider";
import { unwrap, type Api } from "./client";
import {
  queryKeys,
  refreshTokenState,
  useApiQuery,
  useRefreshingMutation,
  useStoringMutation,
} from "./queries";
import type { components } from "./schema";
import type { BodyJson, PaymentIntentCreated } from "./types";

type Schemas = components["schemas"];

// ---------------------------------------------------------------- types

export type Lot = Schemas["LotOut"];
export type LotSource = Lot["source"];
export type LotList = Schemas["LotList"];

export type SubscriptionPlan = Schemas["PlanOut"];
export type SubscriptionPlanList = Schemas["PlanList"];
/** A plan's id; the server's plans are configuration, not a fixed list. */
export type PlanId = SubscriptionPlan["id"];
export type Subscription = Schemas["SubscriptionOut"];
export type SubscriptionStatus = Subscription["status"];
export type SubscriptionEnvelope = Schemas["SubscriptionEnvelope"];
export type SubscriptionCreated = Schemas["CreateSubscriptionResponse"];
export type SavedCard = Schemas["SavedPaymentMethodOut"];
export type SavedCardList = Schemas["SavedPaymentMethods"];
export type PaymentIntentBody = BodyJson<"/api/payment/create-payment-intent", "post">;
/** create-payment-intent's answer; `status` says where a saved-card payment got to. */
export type PaymentIntentWithStatus = PaymentIntentCreated;
export type AutoTopup = Schemas["AutoTopupOut"];
export type AutoTopupSettings = Schemas["AutoTopupIn"];
export type AutoTopupState = AutoTopup["state"];
export type AppNotification = Schemas["NotificationOut"];
/** The kinds the server sends today (`kind` is a plain string: newer servers may add more). */
export type NotificationKind =
  | "balance_low"
  | "topup_succeeded"
  | "topup_failed"
  | "topup_paused"
  | "topup_disabled"
  | "lots_expiring"
  | "renewal_failed"
  | "subscription_renewed";
export type NotificationPage = Schemas["NotificationPage"];
export type NotificationSettings = Schemas["NotificationSettingsIO"];

// ---------------------------------------------------------------- transport

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

export const fetchLots = (api: Api): Promise<LotList> => unwrap(api.client.GET("/api/payment/user/lots"));
export const fetchPlans = (api: Api): Promise<SubscriptionPlanList> =>
  unwrap(api.client.GET("/api/payment/subscription-plans"));
export const fetchSubscription = (api: Api): Promise<SubscriptionEnvelope> =>
  unwrap(api.client.GET("/api/payment/user/subscription"));

export function createSubscription(api: Api, plan: PlanId, idempotencyKey: string): Promise<SubscriptionCreated> {
  return unwrap(
    api.client.POST("/api/payment/create-subscription", {
      body: { plan },
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  );
}

export function createPaymentIntent(
  api: Api,
  body: PaymentIntentBody,
  idempotencyKey: string,
): Promise<PaymentIntentWithStatus> {
  return unwrap(
    api.client.POST("/api/payment/create-payment-intent", {
      body,
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  );
}

// ---------------------------------------------------------------- hooks

export function useLots() {
  const token = useSessionToken();
  return useApiQuery(billingKeys.lots, fetchLots, { enabled: token !== null });
}

export function usePlans() {
  return useApiQuery(billingKeys.plans, fetchPlans, { staleTime: 10 * 60_000 });
}

export function useSubscription() {
  return useApiQuery(billingKeys.subscription, fetchSubscription);
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
        ? unwrap(api.client.POST("/api/payment/update-subscription", { body: { plan: action.plan } }))
        : action.kind === "cancel"
          ? unwrap(api.client.POST("/api/payment/cancel-subscription"))
          : unwrap(api.client.POST("/api/payment/resume-subscription")),
    onSuccess: (subscription) => {
      queryClient.setQueryData<SubscriptionEnvelope>(billingKeys.subscription, { subscription });
    },
    onSettled: () => refreshBilling(queryClient),
  });
}

export function useCustomerPortal() {
  const api = useApi();
  return useMutation({
    mutationFn: () => unwrap(api.client.POST("/api/payment/customer-portal")),
    onSuccess: ({ url }) => window.location.assign(url),
  });
}

export function useSavedCards() {
  return useApiQuery(
    billingKeys.savedCards,
    (api): Promise<SavedCardList> => unwrap(api.client.GET("/api/payment/saved-payment-methods")),
  );
}

export function useRemoveCard() {
  return useRefreshingMutation(
    (api, id: string) =>
      unwrap(
        api.client.DELETE("/api/payment/saved-payment-methods/{payment_method_id}", {
          params: { path: { payment_method_id: id } },
        }),
      ),
    billingKeys.savedCards,
    billingKeys.autoTopup,
  );
}

export function useAutoTopup() {
  return useApiQuery(
    billingKeys.autoTopup,
    (api): Promise<AutoTopup> => unwrap(api.client.GET("/api/payment/auto-topup")),
  );
}

export function useSaveAutoTopup() {
  return useStoringMutation(
    (api, settings: AutoTopupSettings): Promise<AutoTopup> =>
      unwrap(api.client.PUT("/api/payment/auto-topup", { body: settings })),
    billingKeys.autoTopup,
  );
}

export const NOTIFICATIONS_POLL_MS = 60_000;
const NOTIFICATIONS_PAGE = 20;

/** The bell's list and unread count: asked for every minute and whenever the window gets focus. */
export function useNotifications() {
  const token = useSessionToken();
  return useApiQuery(
    billingKeys.notifications,
    (api): Promise<NotificationPage> =>
      unwrap(api.client.GET("/api/notifications", { params: { query: { limit: NOTIFICATIONS_PAGE } } })),
    {
      enabled: token !== null,
      refetchInterval: NOTIFICATIONS_POLL_MS,
      refetchIntervalInBackground: false,
      refetchOnWindowFocus: true,
      staleTime: 15_000,
    },
  );
}

export function useMarkNotificationsRead() {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    /** No ids marks every notification read. */
    mutationFn: (ids?: number[]) =>
      unwrap(api.client.POST("/api/notifications/read", { body: ids ? { ids } : {} })),
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
  return useApiQuery(
    billingKeys.notificationSettings,
    (api): Promise<NotificationSettings> => unwrap(api.client.GET("/api/notifications/settings")),
  );
}

export function useSaveNotificationSettings() {
  return useStoringMutation(
    (api, settings: NotificationSettings) =>
      unwrap(api.client.PUT("/api/notifications/settings", { body: settings })),
    billingKeys.notificationSettings,
  );
}

export function useAdminLots(userId: number) {
  return useApiQuery(
    billingKeys.adminLots(userId),
    (api): Promise<LotList> =>
      unwrap(api.client.GET("/api/admin/users/{user_id}/lots", { params: { path: { user_id: userId } } })),
  );
}

export function useAdminSubscription(userId: number) {
  return useApiQuery(
    billingKeys.adminSubscription(userId),
    (api): Promise<SubscriptionEnvelope> =>
      unwrap(api.client.GET("/api/admin/users/{user_id}/subscription", { params: { path: { user_id: userId } } })),
  );
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


