import { Elements } from "@stripe/react-stripe-js";
import type { Stripe } from "@stripe/stripe-js";
import { useQuery } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { useApi } from "../../api/ApiProvider";
import { confirmCheckout, fetchCheckout, linkToken, type HostedCheckout } from "../../api/checkout";
import { ApiError } from "../../api/errors";
import type { PaymentIntentCreated } from "../../api/types";
import { CheckoutForm } from "../../components/payment/CheckoutForm";
import { useStripeLoader } from "../../components/payment/stripeLoader";
import { Alert } from "../../components/ui/Alert";
import { Card } from "../../components/ui/Card";
import { Skeleton } from "../../components/ui/Skeleton";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatMoney } from "../../lib/format";
import { sleep } from "../../lib/sleep";

const FAILED = new Set(["failed", "requires_payment_method", "canceled"]);
const CONFIRM_DEADLINE_MS = 30_000;
/** Long enough to read "success" before going back to the app. */
const RETURN_DELAY_MS = 2500;

type Phase =
  | { name: "pay"; error: string | null }
  | { name: "confirming" }
  | { name: "done"; tokens: number; returnUrl: string }
  | { name: "processing" };

/** What the checkout form needs, from the hosted checkout (the same server facts). */
function asIntent(c: HostedCheckout): PaymentIntentCreated {
  return {
    client_secret: c.client_secret,
    payment_intent_id: c.payment_intent_id,
    amount: c.amount,
    currency: c.currency,
    tokens: c.tokens,
    publishable_key: c.publishable_key,
    tier: c.tier,
    status: c.status,
  };
}

/**
 * /checkout#token=... — the hosted payment page another app sends its customer to. It
 * takes the card, then asks tokenbank (which asks Stripe) until the tokens are in, and
 * only then says so and returns to the app's return_url.
 */
export default function CheckoutPage() {
  const i18n = useI18n();
  const { t, locale, lang } = i18n;
  const api = useApi();
  const loadStripe = useStripeLoader();
  const token = useMemo(() => linkToken(window.location.hash), []);
  const [phase, setPhase] = useState<Phase>({ name: "pay", error: null });
  const checkout = useQuery({
    queryKey: ["hosted-checkout", token],
    queryFn: () => fetchCheckout(api.baseUrl, token ?? ""),
    enabled: token !== null,
    retry: false,
    staleTime: Infinity,
  });
  const stripePromise = useMemo<Promise<Stripe | null> | null>(
    () => (checkout.data ? loadStripe(checkout.data).catch(() => null) : null),
    [checkout.data, loadStripe],
  );

  const onPaid = useCallback(async () => {
    if (!token || !checkout.data) return;
    setPhase({ name: "confirming" });
    const deadline = Date.now() + CONFIRM_DEADLINE_MS;
    let delay = 300;
    while (Date.now() < deadline) {
      try {
        const done = await confirmCheckout(api.baseUrl, token);
        if (done.credited) {
          setPhase({ name: "done", tokens: done.tokens_added, returnUrl: done.return_url });
          return;
        }
        if (FAILED.has(done.status)) {
          setPhase({ name: "pay", error: t("checkout.failed") });
          return;
        }
      } catch (error) {
        if (!(error instanceof ApiError) || (error.status > 0 && error.status < 500 && error.status !== 429)) {
          setPhase({ name: "pay", error: errorText(i18n, error) });
          return;
        }
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 3000);
    }
    setPhase({ name: "processing" });
  }, [api.baseUrl, checkout.data, i18n, t, token]);

  useEffect(() => {
    if (phase.name !== "done") return;
    const timer = window.setTimeout(() => window.location.assign(phase.returnUrl), RETURN_DELAY_MS);
    return () => window.clearTimeout(timer);
  }, [phase]);

  const shell = (body: ReactNode) => (
    <main className="mx-auto w-full max-w-md px-4 py-10">
      <h1 className="mb-6 text-2xl font-semibold text-slate-900">{t("checkout.title")}</h1>
      {body}
    </main>
  );

  if (!token) return shell(<Alert tone="warning" data-testid="payment-error"><p>{t("checkout.noLink")}</p></Alert>);
  if (checkout.isPending) {
    return shell(<Card className="space-y-3 p-5" aria-busy="true"><p className="text-sm">{t("checkout.loading")}</p><Skeleton className="h-32 w-full" /></Card>);
  }
  if (checkout.isError) {
    return shell(<Alert tone="error" data-testid="payment-error"><p>{errorText(i18n, checkout.error)}</p></Alert>);
  }
  const c = checkout.data;
  const back = (
    <a href={c.return_url} className="mt-3 inline-block font-medium text-brand-700 underline underline-offset-2">
      {t("checkout.back")}
    </a>
  );
  if (phase.name === "done") {
    return shell(
      <Alert tone="success" data-testid="payment-success">
        <p>{t("checkout.success", { tokens: phase.tokens })}</p>
        <p className="text-sm text-slate-600">{t("checkout.returning")}</p>
        {back}
      </Alert>,
    );
  }
  if (phase.name === "processing") {
    return shell(<Alert tone="info"><p>{t("checkout.processing")}</p>{back}</Alert>);
  }
  return shell(
    <Card className="space-y-5 p-5">
      <p className="text-sm text-slate-700" data-testid="checkout-pack">
        {t("checkout.pack", { tokens: c.tokens, price: formatMoney(c.amount, c.currency, locale) })}
      </p>
      {phase.name === "confirming" ? (
        <p className="flex items-center gap-2 text-sm text-slate-600"><Spinner className="size-4" />{t("checkout.confirming")}</p>
      ) : null}
      {stripePromise ? (
        <Elements key={`${c.client_secret}:${lang}`} stripe={stripePromise}
          options={{ clientSecret: c.client_secret, locale: lang === "zh" ? "zh" : "en" }}>
          <CheckoutForm intent={asIntent(c)} returnUrl={window.location.href}
            locked={phase.name === "confirming"} initialError={phase.name === "pay" ? phase.error : null}
            onPaid={() => void onPaid()} />
        </Elements>
      ) : null}
      {back}
    </Card>,
  );
}
