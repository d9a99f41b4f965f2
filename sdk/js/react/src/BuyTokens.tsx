import { Elements } from "@stripe/react-stripe-js";
import type { StripeElementsOptions } from "@stripe/stripe-js";
import { idempotencyKey, type Tier, type WidgetConfirmation, type WidgetPurchase } from "@tokenbank/client";
import { useEffect, useMemo, useRef, useState } from "react";
import { CheckoutForm } from "../../../../client/src/components/payment/CheckoutForm";
import { TierCard } from "../../../../client/src/components/payment/TierCard";
import { tierViews } from "../../../../client/src/components/payment/tiers";
import { Alert } from "../../../../client/src/components/ui/Alert";
import { Skeleton } from "../../../../client/src/components/ui/Skeleton";
import { useI18n } from "../../../../client/src/i18n/useI18n";
import { useTokenbank } from "./context";

/** Statuses after which no tokens will come for this attempt. */
const FAILED = new Set(["failed", "requires_payment_method", "canceled"]);

type Phase =
  | { name: "choose" }
  | { name: "checkout"; purchase: WidgetPurchase; confirming: boolean }
  | { name: "done"; result: WidgetConfirmation }
  | { name: "processing" };

export interface BuyTokensProps {
  /** Called once the tokens are in the customer's account. */
  onPurchased?: (result: WidgetConfirmation) => void;
  /** Where a redirect-based payment method brings the person back (default: this page). */
  returnUrl?: string;
  /** How long to keep asking tokenbank whether the payment was credited (ms). */
  confirmDeadlineMs?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * tokenbank's packs and card form (the web client's TierCard and CheckoutForm): pick a
 * pack, pay with Stripe, and the widget asks tokenbank — never the browser — whether the
 * payment succeeded before it says so. Prices come from tokenbank only.
 */
export function BuyTokens({ onPurchased, returnUrl, confirmDeadlineMs = 15_000 }: BuyTokensProps) {
  const i18n = useI18n();
  const { t } = i18n;
  const { client, loadStripe, refresh } = useTokenbank();
  const [tiers, setTiers] = useState<Tier[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [phase, setPhase] = useState<Phase>({ name: "choose" });
  const [error, setError] = useState<string | null>(null);
  // One idempotency key per pack chosen: choosing it again reuses the same PaymentIntent.
  const keys = useRef(new Map<string, string>());

  useEffect(() => {
    client.tiers().then(setTiers, () => setError(t("payment.stripeLoadError")));
  }, [client, t]);

  const packs = useMemo(
    () => (tiers ? tierViews(Object.fromEntries(tiers.map(({ id, ...tier }) => [id, tier]))) : []),
    [tiers],
  );

  const purchase = phase.name === "checkout" ? phase.purchase : null;
  // Stripe.js depends on the key and script only: a new PaymentIntent keeps the instance.
  const stripeKey = purchase?.publishable_key ?? null;
  const stripeJs = purchase?.stripe_js_url ?? null;
  const stripePromise = useMemo(
    () => (stripeJs ? loadStripe({ publishable_key: stripeKey, stripe_js_url: stripeJs }) : null),
    [stripeKey, stripeJs, loadStripe],
  );

  const choose = async (tier: string) => {
    setSelected(tier);
    setError(null);
    const key = keys.current.get(tier) ?? idempotencyKey();
    keys.current.set(tier, key);
    try {
      setPhase({ name: "checkout", purchase: await client.startPurchase(tier, key), confirming: false });
    } catch {
      setError(t("errors.stripe_unavailable"));
    }
  };

  const settle = async (current: WidgetPurchase, paymentIntentId: string) => {
    setPhase({ name: "checkout", purchase: current, confirming: true });
    const deadline = Date.now() + confirmDeadlineMs;
    for (let delay = 300; ; delay = Math.min(delay * 1.6, 2000)) {
      try {
        const result = await client.confirmPurchase(paymentIntentId);
        if (result.credited) {
          setPhase({ name: "done", result });
          void refresh();
          onPurchased?.(result);
          return;
        }
        if (result.status === "processing") return setPhase({ name: "processing" });
        if (FAILED.has(result.status)) break;
      } catch {
        // asked again below until the deadline: the server may be busy
      }
      if (Date.now() + delay > deadline) break;
      await sleep(delay);
    }
    setError(t("decline.fallback"));
    setPhase({ name: "checkout", purchase: current, confirming: false });
  };

  if (phase.name === "done") {
    return (
      <Alert tone="success" data-testid="payment-success" className="tb-widget">
        <p className="font-semibold">{t("payment.successTitle")}</p>
        <p>{t("payment.successBody", { tokens: phase.result.tokens_added })}</p>
      </Alert>
    );
  }
  if (phase.name === "processing") {
    return <Alert tone="info" className="tb-widget">{t("payment.processingBody")}</Alert>;
  }

  const elementsOptions: StripeElementsOptions | null = purchase
    ? { clientSecret: purchase.client_secret, appearance: { theme: "stripe", variables: { borderRadius: "8px" } } }
    : null;

  return (
    <div className="tb-widget space-y-5">
      {packs.length ? (
        <div className="grid gap-4 sm:grid-cols-3">
          {packs.map((pack, i) => (
            <TierCard
              key={pack.id}
              tier={pack}
              selected={selected === pack.id}
              bestValue={i === packs.length - 1 && packs.length > 1}
              disabled={phase.name === "checkout" && phase.confirming}
              onSelect={(id) => void choose(id)}
            />
          ))}
        </div>
      ) : tiers === null && !error ? (
        <div className="grid gap-4 sm:grid-cols-3" aria-busy="true">
          <Skeleton className="h-48 w-full" />
          <Skeleton className="h-48 w-full" />
          <Skeleton className="h-48 w-full" />
        </div>
      ) : null}
      {purchase && stripePromise && elementsOptions ? (
        <Elements key={purchase.client_secret} stripe={stripePromise} options={elementsOptions}>
          <CheckoutForm
            intent={purchase}
            returnUrl={returnUrl ?? window.location.href}
            locked={phase.name === "checkout" && phase.confirming}
            initialError={error}
            onPaid={(id) => void settle(purchase, id)}
          />
        </Elements>
      ) : error ? (
        <Alert tone="error" role="alert" data-testid="payment-error">{error}</Alert>
      ) : null}
    </div>
  );
}
