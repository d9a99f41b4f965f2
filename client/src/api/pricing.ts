/**
 * Prices per model, quotes, a chat's model and cap, and refunding a reply.
 *
 * HAND-WRITTEN TYPES, TEMPORARILY: the server's pricing endpoints are not in the
 * generated schema yet. At merge these types move to the generated ones (`make
 * client-types`), the requests below become `api.client.GET/POST/PATCH` calls, and the
 * codes in PRICING_ERROR_CODES are in the schema's ErrorDetail.code. Nothing else in the
 * client declares these shapes: it imports them from here.
 */
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useSessionToken } from "../auth/session";
import { useApi } from "./ApiProvider";
import type { Api } from "./client";
import { ApiError, networkError, toApiError } from "./errors";
import { queryKeys, refreshTokenState } from "./queries";
import type { Chat, Message } from "./types";

export type ModelPrice =
  | { kind: "per_reply"; per_reply: number }
  | { kind: "usage"; per_1k_input: number; per_1k_output: number; per_1k_cached: number; minimum: number };

export interface ModelInfo {
  id: string;
  name: string;
  price: ModelPrice;
  /** What a reply on this model has cost this person lately; null before any. */
  recent_average: number | null;
}

export interface ModelList {
  default: string;
  items: ModelInfo[];
  price_version: number;
}

export interface Quote {
  min: number;
  max: number;
  cap: number | null;
  model: string;
  price_version: number;
}

/** What the chat object gains (GET /api/chats items, PATCH /api/chats/{id}). */
export interface ChatPricing {
  model?: string | null;
  cost_cap?: number | null;
}
export type PricedChat = Chat & ChatPricing;

export type FinishReason = "stop" | "length" | "content_filter" | "error" | "cut";

/** What a message gains: the model, what it cost (null for the person's own), and refunds. */
export interface MessagePricing {
  model?: string | null;
  cost?: number | null;
  finish_reason?: FinishReason | null;
  refunded?: boolean;
}
export type PricedMessage = Message & MessagePricing;

export const REFUND_REASONS = ["wrong", "incomplete", "harmful", "other"] as const;
export type RefundReason = (typeof REFUND_REASONS)[number];

export interface RefundResult {
  refunded: number;
  balance: number;
  transaction_id: number | string;
}

/** Error codes of these endpoints that the generated schema does not list yet. */
export const PRICING_ERROR_CODES = ["already_refunded", "refund_limit_reached"] as const;

export const pricingKeys = {
  models: ["models"] as const,
};

/** A signed-in JSON request, renewing the session once on a 401 (as the generated client does). */
async function send<T>(api: Api, method: "GET" | "POST" | "PATCH", path: string, body?: unknown): Promise<T> {
  const request = () =>
    fetch(`${api.baseUrl}${path}`, {
      method,
      headers: {
        ...api.authHeaders(),
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  let response: Response;
  try {
    const sentToken = api.authHeaders().Authorization?.slice("Bearer ".length) ?? null;
    response = await request();
    if (response.status === 401 && sentToken) {
      const renewal = await api.renew(sentToken);
      if (renewal.kind === "renewed") response = await request();
    }
  } catch (cause) {
    throw networkError(cause);
  }
  let json: unknown = null;
  try {
    json = await response.json();
  } catch {
    json = null;
  }
  if (!response.ok) {
    if (response.status === 401) api.onUnauthorized();
    throw toApiError(response.status, json);
  }
  return json as T;
}

const chatPath = (chatId: string) => `/api/chats/${encodeURIComponent(chatId)}`;

export function fetchModels(api: Api): Promise<ModelList> {
  return send<ModelList>(api, "GET", "/api/models");
}

export function fetchQuote(api: Api, chatId: string, content: string, model?: string): Promise<Quote> {
  return send<Quote>(api, "POST", `${chatPath(chatId)}/quote`, model ? { content, model } : { content });
}

export function patchChat(api: Api, chatId: string, changes: ChatPricing & { title?: string }): Promise<PricedChat> {
  return send<PricedChat>(api, "PATCH", chatPath(chatId), changes);
}

export function refundReply(
  api: Api,
  chatId: string,
  messageId: string,
  reason: RefundReason,
  note?: string,
): Promise<RefundResult> {
  const body = note ? { reason, note } : { reason };
  return send<RefundResult>(api, "POST", `${chatPath(chatId)}/messages/${encodeURIComponent(messageId)}/refund`, body);
}

/** Models and their prices; prices change rarely (and only for new replies). */
export function useModels() {
  const api = useApi();
  const token = useSessionToken();
  return useQuery({
    queryKey: pricingKeys.models,
    queryFn: () => fetchModels(api),
    enabled: token !== null,
    staleTime: 5 * 60_000,
  });
}

/**
 * Saves a chat's model or cap. A new model shows at once (quotes name the model they are
 * for); a new cap shows once saved, since the server quotes with the chat's saved cap. A
 * refusal puts back what the server has.
 */
export function useUpdateChat(chatId: string | undefined) {
  const api = useApi();
  const queryClient = useQueryClient();
  const merge = (changes: Partial<PricedChat>) =>
    queryClient.setQueryData<PricedChat[]>(queryKeys.chats, (old) =>
      old?.map((chat) => (String(chat.id) === chatId ? { ...chat, ...changes } : chat)),
    );
  return useMutation({
    mutationFn: (changes: ChatPricing) => patchChat(api, chatId ?? "", changes),
    onMutate: (changes) => {
      if (changes.model !== undefined) merge({ model: changes.model });
    },
    onSuccess: (saved) => {
      if (saved && typeof saved === "object") merge(saved);
    },
    onError: () => queryClient.invalidateQueries({ queryKey: queryKeys.chats }),
  });
}

/** Refunds one AI reply; the message shows as refunded and the balance is the server's. */
export function useRefundReply(chatId: string, messageId: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  const markRefunded = () =>
    queryClient.setQueryData<PricedMessage[]>(queryKeys.messages(chatId), (old) =>
      old?.map((message) => (String(message.id) === messageId ? { ...message, refunded: true } : message)),
    );
  return useMutation({
    mutationFn: ({ reason, note }: { reason: RefundReason; note?: string }) =>
      refundReply(api, chatId, messageId, reason, note),
    onSuccess: () => {
      markRefunded();
      void refreshTokenState(queryClient);
    },
    onError: (error) => {
      // Refunded already (another tab, a retry): the message is refunded all the same.
      if (error instanceof ApiError && error.code === "already_refunded") markRefunded();
    },
  });
}

/** Tokens one reply on `model` is expected to cost: the person's recent average, else its per-reply price. */
export function expectedReplyCost(model: ModelInfo): number | null {
  if (model.recent_average !== null && model.recent_average > 0) return model.recent_average;
  if (model.price.kind === "per_reply" && model.price.per_reply > 0) return model.price.per_reply;
  return null;
}

/** About how many replies `available` tokens buy on `model`; null when there is no fair estimate. */
export function repliesLeft(available: number, model: ModelInfo): number | null {
  const each = expectedReplyCost(model);
  if (each === null) return null;
  return Math.max(0, Math.floor(available / each));
}

/** English runs about 0.75 words per model token, so 1,000 words are about this many tokens. */
const MODEL_TOKENS_PER_1K_WORDS = 4 / 3;

/** Tokens for about 1,000 words of reply on a usage-priced model (rounded up). */
export function tokensPer1kWords(price: Extract<ModelPrice, { kind: "usage" }>): number {
  return Math.ceil(price.per_1k_output * MODEL_TOKENS_PER_1K_WORDS);
}
