/**
 * Server state for the admin dashboard. Everything lives under the ['admin']
 * query key, so a correction can refresh every admin view at once.
 */
import {
  keepPreviousData,
  useInfiniteQuery,
  useMutation,
  useQueryClient,
} from "@tanstack/react-query";
import { useApi } from "./ApiProvider";
import { unwrap, type Api } from "./client";
import { ApiError } from "./errors";
import { queryKeys, useApiQuery, useRefreshingMutation } from "./queries";
import type {
  AdminPaymentStatus,
  Missing,
  AdminTokensBody,
  AdminTransactionCursor,
  WebhookReplay,
  WebhookStatus,
} from "./types";

export const ADMIN_PAGE_SIZE = 50;
export const ADMIN_USERS_LIMIT = 100;

/** Every payment status the server filters by (checked against the schema below). */
export const PAYMENT_STATUSES = [
  "succeeded",
  "processing",
  "requires_payment_method",
  "requires_confirmation",
  "requires_action",
  "requires_capture",
  "created",
  "canceled",
  "failed",
] as const satisfies readonly AdminPaymentStatus[];

export const WEBHOOK_STATUSES = [
  "received",
  "processing",
  "handled",
  "failed",
  "dead",
  "unprocessable",
  "ignored",
] as const satisfies readonly WebhookStatus[];

// A status the server adds makes these lines fail to compile until the list follows.
const paymentStatusesComplete: Missing<AdminPaymentStatus, (typeof PAYMENT_STATUSES)[number]> = true;
const webhookStatusesComplete: Missing<WebhookStatus, (typeof WEBHOOK_STATUSES)[number]> = true;
void paymentStatusesComplete;
void webhookStatusesComplete;

export const adminKeys = {
  all: ["admin"] as const,
  stats: (days: number) => ["admin", "stats", days] as const,
  refunds: (days: number) => ["admin", "refunds", days] as const,
  users: (query: string) => ["admin", "users", query] as const,
  user: (userId: number) => ["admin", "user", userId] as const,
  payments: (status: AdminPaymentStatus | null) => ["admin", "payments", status ?? "all"] as const,
  webhooks: (status: WebhookStatus | null) => ["admin", "webhooks", status ?? "all"] as const,
};

export function useAdminStats(days: number) {
  return useApiQuery(
    adminKeys.stats(days),
    (api) => unwrap(api.client.GET("/api/admin/stats", { params: { query: { days } } })),
    { placeholderData: keepPreviousData },
  );
}

export function useAdminRefunds(days: number) {
  return useApiQuery(
    adminKeys.refunds(days),
    (api) => unwrap(api.client.GET("/api/admin/refunds", { params: { query: { days } } })),
    { placeholderData: keepPreviousData },
  );
}

export function useAdminUsers(query: string) {
  return useApiQuery(
    adminKeys.users(query),
    (api) =>
      unwrap(
        api.client.GET("/api/admin/users", {
          params: { query: { query: query || undefined, limit: ADMIN_USERS_LIMIT } },
        }),
      ),
    // Keep the last results on screen while the next search runs.
    { placeholderData: keepPreviousData },
  );
}

/** One user: the first page carries the account and payments, later pages only add ledger rows. */
export function useAdminUser(userId: number) {
  const api = useApi();
  return useInfiniteQuery({
    queryKey: adminKeys.user(userId),
    initialPageParam: undefined as AdminTransactionCursor | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.client.GET("/api/admin/users/{user_id}", {
          params: {
            path: { user_id: userId },
            query: { before: pageParam, limit: ADMIN_PAGE_SIZE },
          },
        }),
      ),
    getNextPageParam: (last) => last.next_before ?? undefined,
  });
}

export function useAdminPayments(status: AdminPaymentStatus | null) {
  const api = useApi();
  return useInfiniteQuery({
    queryKey: adminKeys.payments(status),
    initialPageParam: undefined as number | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.client.GET("/api/admin/payments", {
          params: { query: { status, before: pageParam, limit: ADMIN_PAGE_SIZE } },
        }),
      ),
    // Newest first by id; a full page means there may be older ones.
    getNextPageParam: (last) =>
      last.length === ADMIN_PAGE_SIZE ? last[last.length - 1]?.id : undefined,
  });
}

export function useAdminWebhooks(status: WebhookStatus | null) {
  return useApiQuery(
    adminKeys.webhooks(status),
    (api) =>
      unwrap(
        api.client.GET("/api/admin/webhooks", { params: { query: { status, limit: 100 } } }),
      ),
  );
}

/** Grant (amount > 0) or correct (amount < 0) a user's tokens, then refresh what shows them. */
export function useAdjustTokens(userId: number) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    // One Idempotency-Key per confirmed request: a retried or doubled send posts once.
    mutationFn: ({ idempotencyKey, ...body }: AdminTokensBody & { idempotencyKey: string }) =>
      unwrap(
        api.client.POST("/api/admin/users/{user_id}/tokens", {
          params: { path: { user_id: userId }, header: { "Idempotency-Key": idempotencyKey } },
          body,
        }),
      ),
    onSuccess: async () => {
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: adminKeys.all }),
        // An admin granting to themselves sees their own balance move too.
        queryClient.invalidateQueries({ queryKey: queryKeys.tokenBalance }),
        queryClient.invalidateQueries({ queryKey: queryKeys.transactions }),
      ]);
    },
  });
}

/** Raised when the server has no "process again" route (an older app: `method_not_allowed` / `not_found`). */
export class ReprocessUnavailable extends ApiError {
  constructor(status: number) {
    super(status, "reprocess_unavailable", "");
  }
}

/**
 * `POST /api/admin/webhooks/{event_id}/process`: the server fetches the event from Stripe
 * again and runs it. An app from before this route answers 405 (or its generic "no such
 * API route" 404), which is told apart from a real refusal such as an unknown event.
 */
export async function processWebhookEvent(api: Api, eventId: string): Promise<WebhookReplay> {
  try {
    return await unwrap(
      api.client.POST("/api/admin/webhooks/{event_id}/process", {
        params: { path: { event_id: eventId } },
      }),
    );
  } catch (error) {
    // An unknown event is `payment_not_found`; a missing route is the router's own code.
    if (error instanceof ApiError && (error.code === "method_not_allowed" || error.code === "not_found")) {
      throw new ReprocessUnavailable(error.status);
    }
    throw error;
  }
}

export function useProcessWebhook() {
  return useRefreshingMutation(processWebhookEvent, ["admin", "webhooks"]);
}
