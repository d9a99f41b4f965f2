/**
 * React Query hooks for the server state the pages share. The balance lives
 * under ['tokenBalance'] and is refreshed after every AI reply and payment (and, while
 * an automatic top-up is due, every few seconds: useAutoTopupRefill).
 */
import {
  useInfiniteQuery,
  useMutation,
  useQuery,
  useQueryClient,
  type QueryClient,
  type QueryKey,
  type UseQueryOptions,
} from "@tanstack/react-query";
import { useSessionToken } from "../auth/session";
import { useApi } from "./ApiProvider";
import { unwrap, type Api } from "./client";
import type { ChatId, TransactionCursor } from "./types";

export const queryKeys = {
  tokenBalance: ["tokenBalance"] as const,
  me: ["me"] as const,
  pricingTiers: ["pricingTiers"] as const,
  paymentConfig: ["paymentConfig"] as const,
  chatConfig: ["chatConfig"] as const,
  chats: ["chats"] as const,
  messages: (chatId: string) => ["messages", chatId] as const,
  transactions: ["transactions"] as const,
  /** Token lots (api/billing.ts): what is left in each and when it expires. */
  lots: ["lots"] as const,
  payment: (paymentIntentId: string) => ["payment", paymentIntentId] as const,
};

/** Below this many available tokens the UI suggests topping up. */
export const LOW_BALANCE_TOKENS = 5;
export const TRANSACTIONS_PAGE_SIZE = 50;

export function fetchTokenBalance(api: Api) {
  return unwrap(api.client.GET("/api/payment/user/tokens"));
}

export function useTokenBalance() {
  const token = useSessionToken();
  return useApiQuery(
    queryKeys.tokenBalance,
    fetchTokenBalance,
    { enabled: token !== null },
  );
}

export function useMe() {
  const token = useSessionToken();
  return useApiQuery(
    queryKeys.me,
    (api) => unwrap(api.client.GET("/api/auth/me")),
    { enabled: token !== null, staleTime: 5 * 60_000 },
  );
}

export function usePricingTiers() {
  return useApiQuery(
    queryKeys.pricingTiers,
    (api) => unwrap(api.client.GET("/api/payment/pricing-tiers")),
    { staleTime: 10 * 60_000 },
  );
}

export function usePaymentConfig() {
  return useApiQuery(
    queryKeys.paymentConfig,
    (api) => unwrap(api.client.GET("/api/payment/config")),
    { staleTime: Infinity },
  );
}

export function useChatConfig() {
  return useApiQuery(
    queryKeys.chatConfig,
    (api) => unwrap(api.client.GET("/api/chats/config")),
    { staleTime: 10 * 60_000 },
  );
}

export function useChats() {
  return useApiQuery(
    queryKeys.chats,
    (api) => unwrap(api.client.GET("/api/chats")),
  );
}

/**
 * Route params are strings; the API's chat id type comes from the schema.
 * Numeric-looking ids become numbers, anything else (e.g. UUIDs) stays a string.
 */
export function toChatId(raw: string): ChatId {
  return (/^\d+$/.test(raw) ? Number(raw) : raw) as ChatId;
}

export function useMessages(chatId: string | undefined) {
  return useApiQuery(
    queryKeys.messages(chatId ?? ""),
    (api) =>
      unwrap(
        api.client.GET("/api/chats/{chat_id}/messages", {
          params: { path: { chat_id: toChatId(chatId ?? "") } },
        }),
      ),
    { enabled: chatId !== undefined },
  );
}

export function useTransactions() {
  const api = useApi();
  return useInfiniteQuery({
    queryKey: queryKeys.transactions,
    initialPageParam: undefined as TransactionCursor | undefined,
    queryFn: ({ pageParam }) =>
      unwrap(
        api.client.GET("/api/payment/user/transactions", {
          params: { query: { limit: TRANSACTIONS_PAGE_SIZE, before: pageParam } },
        }),
      ),
    getNextPageParam: (last) => last.next_before ?? undefined,
  });
}

export function fetchPayment(api: Api, paymentIntentId: string) {
  return unwrap(
    api.client.GET("/api/payment/payments/{payment_intent_id}", {
      params: { path: { payment_intent_id: paymentIntentId } },
    }),
  );
}

export function usePayment(paymentIntentId: string | null) {
  return useApiQuery(
    queryKeys.payment(paymentIntentId ?? ""),
    (api) => fetchPayment(api, paymentIntentId ?? ""),
    { enabled: paymentIntentId !== null },
  );
}

/** After anything that moves tokens: the balance, the ledger and the lots are stale. */
export async function refreshTokenState(queryClient: QueryClient): Promise<void> {
  await Promise.all([
    queryClient.invalidateQueries({ queryKey: queryKeys.tokenBalance }),
    queryClient.invalidateQueries({ queryKey: queryKeys.transactions }),
    queryClient.invalidateQueries({ queryKey: queryKeys.lots }),
  ]);
}

/**
 * A mutation through the API that, once it settles (done or failed: a failed call may
 * still have changed something), refreshes every query under each key of `refresh`.
 */
export function useRefreshingMutation<TVars, TResult>(
  call: (api: Api, vars: TVars) => Promise<TResult>,
  ...refresh: QueryKey[]
) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (vars: TVars) => call(api, vars),
    onSettled: () =>
      Promise.all(refresh.map((queryKey) => queryClient.invalidateQueries({ queryKey }))),
  });
}

/** A mutation through the API whose answer is the new value of the query at `queryKey`. */
export function useStoringMutation<TVars, TResult>(
  call: (api: Api, vars: TVars) => Promise<TResult>,
  queryKey: QueryKey,
) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (vars: TVars) => call(api, vars),
    onSuccess: (saved: TResult) => queryClient.setQueryData(queryKey, saved),
  });
}

/** The query at `queryKey`, read through the API by `read`. */
export function useApiQuery<T>(
  queryKey: QueryKey,
  read: (api: Api) => Promise<T>,
  options: Omit<UseQueryOptions<T, Error, T, QueryKey>, "queryKey" | "queryFn"> = {},
) {
  const api = useApi();
  return useQuery({ ...options, queryKey, queryFn: () => read(api) });
}
