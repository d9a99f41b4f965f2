import type { I18n } from "../../i18n/I18nProvider";
import { Badge, type BadgeTone } from "../ui/Badge";

type Words = Pick<I18n, "t" | "has">;

/** A server word (status, type, code) in the person's language, or the word itself. */
export function inWords(i18n: Words, prefix: string, value: string): string {
  const key = `${prefix}.${value}`;
  return i18n.has(key) ? i18n.t(key) : value.replace(/_/g, " ");
}

const paymentTones: Record<string, BadgeTone> = {
  succeeded: "success",
  processing: "info",
  requires_action: "warning",
  requires_payment_method: "neutral",
  requires_confirmation: "neutral",
  requires_capture: "info",
  created: "neutral",
  canceled: "neutral",
  failed: "error",
};

const webhookTones: Record<string, BadgeTone> = {
  handled: "success",
  received: "info",
  processing: "info",
  failed: "warning",
  dead: "error",
  unprocessable: "neutral",
  ignored: "neutral",
};

const disputeTones: Record<string, BadgeTone> = {
  inquiry: "info",
  open: "warning",
  funds_withdrawn: "error",
  lost: "error",
  won: "success",
  closed: "neutral",
  unknown: "warning",
};

export function PaymentStatusBadge({ i18n, status }: { i18n: Words; status: string }) {
  return <Badge tone={paymentTones[status] ?? "neutral"}>{inWords(i18n, "paymentStatus", status)}</Badge>;
}

export function WebhookStatusBadge({ i18n, status }: { i18n: Words; status: string }) {
  return <Badge tone={webhookTones[status] ?? "neutral"}>{inWords(i18n, "admin.webhookStatus", status)}</Badge>;
}

export function DisputeBadge({ i18n, status }: { i18n: Words; status: string }) {
  return <Badge tone={disputeTones[status] ?? "warning"}>{inWords(i18n, "admin.dispute", status)}</Badge>;
}
