import type { StripeElementsOptions } from "@stripe/stripe-js";
import type { Lang } from "../../i18n/I18nProvider";

const BRAND_COLOR = "#0d9488";

/** The Payment Element's options for a PaymentIntent's client secret, in the page's language. */
export function elementsOptions(clientSecret: string, lang: Lang): StripeElementsOptions {
  return {
    clientSecret,
    locale: lang === "zh" ? "zh" : "en",
    appearance: {
      theme: "stripe",
      variables: { colorPrimary: BRAND_COLOR, borderRadius: "8px", fontSizeBase: "15px" },
    },
  };
}
