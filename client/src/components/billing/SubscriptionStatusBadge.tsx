import type { Subscription, SubscriptionStatus } from "../../api/billing";
import type { I18n } from "../../i18n/I18nProvider";
import type { MessageKey } from "../../i18n/messages";
import { useI18n } from "../../i18n/useI18n";
import { Badge, type BadgeTone } from "../ui/Badge";
import { formatPeriodEnd } from "./plans";

// A status added to the type without its words fails to compile here.
const everyStatusWorded: `subscriptionStatus.${SubscriptionStatus}` extends MessageKey ? true : never = true;
void everyStatusWorded;

const statusTones: Record<SubscriptionStatus, BadgeTone> = {
  active: "success",
  trialing: "info",
  past_due: "error",
  unpaid: "error",
  incomplete: "warning",
  canceled: "neutral",
  incomplete_expired: "neutral",
  paused: "warning",
};

export function statusText(i18n: Pick<I18n, "t" | "has" | "locale">, subscription: Subscription): string {
  if (subscription.cancel_at_period_end && subscription.status === "active") {
    return i18n.t("subscriptionStatus.cancelling", { date: formatPeriodEnd(subscription, i18n.locale) });
  }
  const key = `subscriptionStatus.${subscription.status}`;
  return i18n.has(key) ? i18n.t(key) : subscription.status;
}

export function SubscriptionStatusBadge({ subscription }: { subscription: Subscription }) {
  const i18n = useI18n();
  const tone = subscription.cancel_at_period_end ? "warning" : ((statusTones as Record<string, BadgeTone>)[subscription.status] ?? "neutral");
  return (
    <Badge tone={tone}>
      <span data-testid="subscription-status">{statusText(i18n, subscription)}</span>
    </Badge>
  );
}
