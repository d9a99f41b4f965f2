import type { StripeError } from "@stripe/stripe-js";
import type { I18n } from "../../i18n/I18nProvider";

/** Words for a Stripe error: our translation of the decline code, else Stripe's own message. */
export function describeStripeError(i18n: Pick<I18n, "t" | "has">, error: StripeError): string {
  for (const code of [error.decline_code, error.code]) {
    const key = code ? `decline.${code}` : "";
    if (code && i18n.has(key)) return i18n.t(key);
  }
  return error.message || i18n.t("decline.fallback");
}
