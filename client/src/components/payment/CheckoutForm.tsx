import { PaymentElement, useElements, useStripe } from "@stripe/react-stripe-js";
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from "react";
import { useI18n } from "../../i18n/useI18n";
import { formatMoney } from "../../lib/format";
import { Alert } from "../ui/Alert";
import { Button } from "../ui/Button";
import { Icon } from "../ui/Icon";
import { describeStripeError } from "./stripeErrors";

/** Statuses after which the money is on its way and the server takes over. */
const PAID_STATUSES = new Set(["succeeded", "processing", "requires_capture"]);

/** What the form charges: a pack's PaymentIntent, or a subscription invoice's. */
export interface CheckoutAmount {
  amount: number;
  currency: string;
  /** Known for a pack; an invoice's PaymentIntent id comes back from Stripe. */
  payment_intent_id?: string;
}

interface CheckoutFormProps {
  intent: CheckoutAmount;
  /** Where a redirect-based payment method brings the person back to. */
  returnUrl: string;
  /** The server is confirming: keep the form visible but locked. */
  locked: boolean;
  /** An error from a previous attempt on this PaymentIntent (e.g. failed after paying). */
  initialError?: string | null;
  onPaid: (paymentIntentId: string) => void;
  /** The submit button's text (default "Pay {amount}") and data-testid (default pay-button). */
  submitLabel?: string;
  submitTestId?: string;
  /** Shown between the Payment Element and the button (e.g. "save this card"). */
  extra?: ReactNode;
}

/**
 * Stripe's Payment Element plus the Pay button. A decline keeps the same
 * PaymentIntent, so the person can simply try another card.
 */
export function CheckoutForm({
  intent, returnUrl, locked, initialError = null, onPaid, submitLabel, submitTestId = "pay-button", extra = null,
}: CheckoutFormProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const stripe = useStripe();
  const elements = useElements();
  const [inFlight, setInFlight] = useState(false);
  const [error, setError] = useState<string | null>(initialError);
  // A ref as well as state: two clicks in one frame must not both confirm.
  const inFlightRef = useRef(false);

  useEffect(() => {
    if (initialError) setError(initialError);
  }, [initialError]);

  const onSubmit = async (event: FormEvent) => {
    event.preventDefault();
    if (!stripe || !elements || inFlightRef.current || locked) return;
    inFlightRef.current = true;
    setInFlight(true);
    setError(null);
    try {
      const result = await stripe.confirmPayment({
        elements,
        redirect: "if_required",
        confirmParams: { return_url: returnUrl },
      });
      if (result.error) {
        setError(describeStripeError(i18n, result.error));
        return;
      }
      const status = result.paymentIntent.status;
      if (PAID_STATUSES.has(status)) onPaid(result.paymentIntent.id || (intent.payment_intent_id ?? ""));
      else setError(t("decline.fallback"));
    } catch {
      setError(t("errors.stripe_unavailable"));
    } finally {
      inFlightRef.current = false;
      setInFlight(false);
    }
  };

  const busy = inFlight || locked;
  return (
    <form onSubmit={onSubmit} className="space-y-5" aria-busy={busy}>
      <div className="min-h-40">
        <PaymentElement options={{ layout: "tabs" }} />
      </div>
      {extra}
      {error ? (
        <Alert tone="error" role="alert" data-testid="payment-error">
          <p>{error}</p>
          <p className="text-rose-800/80">{t("payment.retryHint")}</p>
        </Alert>
      ) : null}
      <Button
        type="submit"
        size="lg"
        data-testid={submitTestId}
        className="w-full"
        disabled={!stripe || !elements || busy}
        busy={busy}
        icon={<Icon name="lock" className="size-4" />}
      >
        {busy ? t("payment.paying") : submitLabel ?? t("payment.pay", { amount: formatMoney(intent.amount, intent.currency, locale) })}
      </Button>
      <p className="flex items-center justify-center gap-1.5 text-xs text-slate-500">
        <Icon name="shield" className="size-4" />
        {t("payment.secure")}
      </p>
    </form>
  );
}
