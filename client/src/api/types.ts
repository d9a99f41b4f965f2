/**
 * Names for the shapes the app uses, all derived from the generated `paths`
 * (paths and methods are the stable contract; schema names may change when the
 * schema is regenerated from the server).
 */
import type { components, paths } from "./schema";

type JsonBody<R> = R extends { content: { "application/json": infer J } } ? J : never;
type Responses<P extends keyof paths, M extends "get" | "post"> =
  NonNullable<paths[P][M]> extends { responses: infer R } ? R : never;
/** The JSON body of the success (200 or 201) response of `M P`. */
export type OkJson<P extends keyof paths, M extends "get" | "post"> =
  Responses<P, M> extends { 200: infer R }
    ? JsonBody<R>
    : Responses<P, M> extends { 201: infer R }
      ? JsonBody<R>
      : never;
/** The JSON request body of `M P`. */
export type BodyJson<P extends keyof paths, M extends "get" | "post"> =
  NonNullable<paths[P][M]> extends { requestBody?: infer B } ? JsonBody<NonNullable<B>> : never;

export type AuthResult = OkJson<"/api/auth/login", "post">;
export type Me = OkJson<"/api/auth/me", "get">;
export type RegisterBody = BodyJson<"/api/auth/register", "post">;
export type TokenBalance = OkJson<"/api/payment/user/tokens", "get">;
export type TransactionPage = OkJson<"/api/payment/user/transactions", "get">;
export type Transaction = TransactionPage["items"][number];
export type TransactionCursor = NonNullable<TransactionPage["next_before"]>;
export type PricingTiers = OkJson<"/api/payment/pricing-tiers", "get">;
export type PricingTier = PricingTiers[string];
export type PaymentConfig = OkJson<"/api/payment/config", "get">;
export type PaymentIntentCreated = OkJson<"/api/payment/create-payment-intent", "post">;
export type ConfirmPaymentResult = OkJson<"/api/payment/confirm-payment", "post">;
export type PaymentDetail = OkJson<"/api/payment/payments/{payment_intent_id}", "get">;
export type Chat = OkJson<"/api/chats", "get">[number];
export type ChatId = Chat["id"];
export type Message = OkJson<"/api/chats/{chat_id}/messages", "get">[number];
export type RefundBody = BodyJson<"/api/chats/{chat_id}/messages/{message_id}/refund", "post">;
export type RefundReason = RefundBody["reason"];
export type GenerateResult = OkJson<"/api/chats/{chat_id}/generate", "post">;
export type ChatConfig = OkJson<"/api/chats/config", "get">;

type GetQuery<P extends keyof paths> =
  NonNullable<paths[P]["get"]> extends { parameters: { query?: infer Q } } ? NonNullable<Q> : never;

export type AdminUser = OkJson<"/api/admin/users", "get">[number];
export type AdminUserDetail = OkJson<"/api/admin/users/{user_id}", "get">;
export type AdminTransactionCursor = NonNullable<AdminUserDetail["next_before"]>;
export type AdminTokensBody = BodyJson<"/api/admin/users/{user_id}/tokens", "post">;
export type AdminTokensResult = OkJson<"/api/admin/users/{user_id}/tokens", "post">;
export type AdminPayment = OkJson<"/api/admin/payments", "get">[number];
export type AdminPaymentStatus = NonNullable<GetQuery<"/api/admin/payments">["status"]>;
export type WebhookEvent = OkJson<"/api/admin/webhooks", "get">[number];
export type WebhookStatus = NonNullable<GetQuery<"/api/admin/webhooks">["status"]>;
export type AdminStats = OkJson<"/api/admin/stats", "get">;
export type DailyTotals = AdminStats["daily"][number];
export type TopSpender = AdminStats["top_spenders"][number];
export type AdminRefunds = OkJson<"/api/admin/refunds", "get">;
export type WebhookReplay = OkJson<"/api/admin/webhooks/{event_id}/process", "post">;
/** Every `error.code` the server answers with (the schema lists them all). */
export type ErrorCode = components["schemas"]["ErrorDetail"]["code"];

/**
 * `true` when `Listed` names every member of `All`, else the members it misses: a
 * `const x: Missing<Status, (typeof STATUSES)[number]> = true` line stops compiling when
 * the server adds a status the list does not have yet.
 */
export type Missing<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
