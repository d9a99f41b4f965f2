import type { Stripe } from "@stripe/stripe-js";
import { useRef, useState } from "react";
import { createPaymentIntent, type SavedCard } from "../../api/billing";
import { useApi } from "../../api/ApiProvider";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { Icon } from "../../components/ui/Icon";
import { describeStripeError } from "../../components/payment/stripeErrors";
import { cardLabel } from "../../components/billing/cards";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatMoney } from "../../lib/format";
import { newIdempotencyKey } from "../../lib/ids";

const PAID_STATUSES = new Set(["succeeded", "processing", "requires_capture"]);

interface OneClickBuyProps {
  tier: string;
  amount: number;
  currency: string;
  cards: SavedCard[];
  stripe: Promise<Stripe | null> | null;
  locked: boolean;
  /** The payment went through (or is processing): the page waits for the tokens. */
  onPaid: (paymentIntentId: string) => void;
}

/**
 * Buy the open pack with a saved card: the server prices and confirms it off the page
 * (one Idempotency-Key per click); when the bank asks for 3D Secure the page runs
 * Stripe's next action with the PaymentIntent's client secret.
 */
export function OneClickBuy({ tier, amount, currency, cards, stripe, locked, onPaid }: OneClickBuyProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const api = useApi();
  const [cardId, setCardId] = useState(() => (cards.find((card) => card.is_default) ?? cards[0])?.id ?? "");
  const [busy, setBusy] = useState<null | "paying" | "verifying">(null);
  const [error, setError] = useState<string | null>(null);
  const inFlight = useRef(false);
  const card = cards.find((c) => c.id === cardId) ?? cards[0];
  if (!card) return null;

  const buy = async () => {
    if (inFlight.current || locked) return;
    inFlight.current = true;
    setBusy("paying");
    setError(null);
    try {
      const intent = await createPaymentIntent(api, { tier, payment_method_id: card.id }, newIdempotencyKey());
      const { status } = intent;
      if (PAID_STATUSES.has(status)) {
        onPaid(intent.payment_intent_id);
        return;
      }
      if (status === "requires_action" || status === "requires_confirmation") {
        setBusy("verifying");
        const client = stripe ? await stripe : null;
        if (!client) {
          setError(t("payment.stripeLoadError"));
          return;
        }
        const result = await client.handleNextAction({ clientSecret: intent.client_secret });
        if (result.error) {
          setError(describeStripeError(i18n, result.error));
        } else if (result.paymentIntent && PAID_STATUSES.has(result.paymentIntent.status)) {
          onPaid(result.paymentIntent.id || intent.payment_intent_id);
        } else {
          setError(t("decline.fallback"));
        }
        return;
      }
      setError(t("decline.card_declined"));
    } catch (cause) {
      setError(errorText(i18n, cause));
    } finally {
      inFlight.current = false;
      setBusy(null);
    }
  };

  const label = cardLabel(i18n, card);
  return (
    <div className="mb-5 space-y-3 rounded-xl bg-slate-50 p-4 ring-1 ring-inset ring-slate-200">
      <p className="text-sm font-semibold text-slate-900">{t("cards.oneClickTitle")}</p>
      {cards.length > 1 ? (
        <select aria-label={t("topup.card")} value={card.id} onChange={(event) => setCardId(event.target.value)}
          disabled={busy !== null || locked}
          className="block h-10 w-full rounded-lg border border-slate-300 bg-white px-3 text-sm">
          {cards.map((c) => <option key={c.id} value={c.id}>{cardLabel(i18n, c)}</option>)}
        </select>
      ) : null}
      <Button data-testid="one-click-buy" className="w-full" busy={busy !== null} disabled={busy !== null || locked}
        icon={<Icon name="card" className="size-4" />} onClick={() => void buy()}>
        {busy === "verifying" ? t("cards.verifying")
          : t("cards.oneClick", { amount: formatMoney(amount, currency, locale), card: label })}
      </Button>
      {error ? <Alert tone="error" role="alert" data-testid="one-click-error"><p>{error}</p></Alert> : null}
      <p className="text-center text-xs text-slate-500">{t("cards.orNewCard")}</p>
    </div>
  );
}
