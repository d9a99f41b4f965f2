/**
 * Prices per model, quotes, a chat's model and cap, and refunding a reply. Every shape
 * here is the server's, from the generated schema.
 */
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useSessionToken } from "../auth/session";
import { useApi } from "./ApiProvider";
import { unwrap, type Api } from "./client";
import { ApiError } from "./errors";
import { queryKeys, refreshTokenState, toChatId, useApiQuery } from "./queries";
import type { components } from "./schema";
import type { Chat, Message, Missing, RefundReason } from "./types";

type Schemas = components["schemas"];
export type ModelList = Schemas["ModelsOut"];
export type ModelInfo = Schemas["ModelOut"];
export type ModelPrice = ModelInfo["price"];
export type UsagePrice = Schemas["UsagePriceOut"];
export type Quote = Schemas["QuoteOut"];
/** What PATCH /api/chats/{id} may change (absent: unchanged; null: back to the default). */
export type ChatChanges = Schemas["ChatUpdate"];
export type SavedChat = Schemas["ChatOut"];
export type FinishReason = NonNullable<Message["finish_reason"]>;
export type RefundResult = Schemas["RefundResponse"];
export type { RefundReason };

/** Every refund reason, in the order the form offers them (checked against the schema). */
export const REFUND_REASONS = ["wrong", "incomplete", "harmful", "other"] as const satisfies readonly RefundReason[];
const reasonsComplete: Missing<RefundReason, (typeof REFUND_REASONS)[number]> = true;
void reasonsComplete;

export const pricingKeys = {
  models: ["models"] as const,
};

const messageIdOf = (raw: string): number => Number(raw);

export function fetchModels(api: Api): Promise<ModelList> {
  return unwrap(api.client.GET("/api/models"));
}

export function fetchQuote(api: Api, chatId: string, content: string, model?: string): Promise<Quote> {
  return unwrap(
    api.client.POST("/api/chats/{chat_id}/quote", {
      params: { path: { chat_id: toChatId(chatId) } },
      body: model ? { content, model } : { content },
    }),
  );
}

/**
 * A quote before the chat exists (the new-chat composer): the draft of its first message,
 * with the model and cap the new chat will be given.
 */
export function fetchNewChatQuote(api: Api, content: string, model?: string, cap?: number | null): Promise<Quote> {
  return unwrap(
    api.client.POST("/api/chats/quote", {
      body: { content, ...(model ? { model } : {}), ...(cap ? { cost_cap: cap } : {}) },
    }),
  );
}

export function patchChat(api: Api, chatId: string, changes: ChatChanges): Promise<SavedChat> {
  return unwrap(
    api.client.PATCH("/api/chats/{chat_id}", {
      params: { path: { chat_id: toChatId(chatId) } },
      body: changes,
    }),
  );
}

export function refundReply(
  api: Api,
  chatId: string,
  messageId: string,
  reason: RefundReason,
  note?: string,
): Promise<RefundResult> {
  return unwrap(
    api.client.POST("/api/chats/{chat_id}/messages/{message_id}/refund", {
      params: { path: { chat_id: toChatId(chatId), message_id: messageIdOf(messageId) } },
      body: note ? { reason, note } : { reason },
    }),
  );
}

/** Models and their prices; prices change rarely (and only for new replies). */
export function useModels() {
  const token = useSessionToken();
  return useApiQuery(
    pricingKeys.models,
    fetchModels,
    { enabled: token !== null, staleTime: 5 * 60_000 },
  );
}

/**
 * Saves a chat's model or cap. A new model shows at once (quotes name the model they are
 * for); a new cap shows once saved, since the server quotes with the chat's saved cap. A
 * refusal puts back what the server has.
 */
export function useUpdateChat(chatId: string | undefined) {
  const api = useApi();
  const queryClient = useQueryClient();
  const merge = (changes: Partial<Chat>) =>
    queryClient.setQueryData<Chat[]>(queryKeys.chats, (old) =>
      old?.map((chat) => (String(chat.id) === chatId ? { ...chat, ...changes } : chat)),
    );
  return useMutation({
    mutationFn: (changes: ChatChanges) => patchChat(api, chatId ?? "", changes),
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
    queryClient.setQueryData<Message[]>(queryKeys.messages(chatId), (old) =>
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
export function tokensPer1kWords(price: UsagePrice): number {
  return Math.ceil(price.per_1k_output * MODEL_TOKENS_PER_1K_WORDS);
}
