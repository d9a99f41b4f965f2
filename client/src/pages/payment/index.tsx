import { Elements } from "@stripe/react-stripe-js";
import { useEffect, useMemo, useRef } from "react";
import { Link, useSearch } from "wouter";
import { useSavedCards } from "../../api/billing";
import { usePaymentConfig, usePricingTiers } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { CheckoutForm } from "../../components/payment/CheckoutForm";
import { elementsOptions } from "../../components/payment/elementsOptions";
import { TestModeBanner } from "../../components/payment/TestModeBanner";
import { TierCard } from "../../components/payment/TierCard";
import { tierName, tierViews } from "../../components/payment/tiers";
import { Alert } from "../../components/ui/Alert";
import { Button, buttonClasses } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { Spinner } from "../../components/ui/Spinner";
import type { I18n } from "../../i18n/I18nProvider";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { safeReturnPath } from "../../lib/returnPath";
import { OneClickBuy } from "./OneClickBuy";
import type { CheckoutProblem } from "./paymentMachine";
import { PlansSection } from "./PlansSection";
import { usePaymentFlow, useStripeJs } from "./usePaymentFlow";

/** Where a redirect-based payment method returns to (Stripe appends payment_intent=...). */
function stripeReturnUrl(returnPath: string | null): string {
  const url = new URL("/payment", window.location.origin);
  if (returnPath) url.searchParams.set("return", returnPath);
  return url.toString();
}

function problemText(i18n: I18n, problem: CheckoutProblem | null): string | null {
  if (!problem) return null;
  return problem.kind === "failed" ? i18n.t("payment.failedTitle") : errorText(i18n, problem.error);
}

/**
 * Pick a pack → PaymentIntent (one Idempotency-Key per attempt) → Payment
 * Element → Stripe confirms → the server confirms the tokens are in → success.
 * The steps are the states of `paymentMachine`; this component only draws them.
 */
export default function PaymentPage() {
  const i18n = useI18n();
  const { t, lang } = i18n;
  const params = new URLSearchParams(useSearch());
  const returnPath = safeReturnPath(params.get("return"));

  const tiersQuery = usePricingTiers();
  const configQuery = usePaymentConfig();
  const stripe = useStripeJs(configQuery.data);
  const flow = usePaymentFlow(
    {
      presetTier: params.get("tier"),
      redirectedIntent: params.get("payment_intent"),
      // Stripe appends redirect_status=succeeded|processing|failed when it sends the person back.
      redirectFailed: params.get("redirect_status") === "failed",
    },
    tiersQuery.data,
  );
  const { selected, intent, phase, saveCard } = flow.state;
  const savedCards = useSavedCards();
  const cards = savedCards.data?.items ?? [];
  // A payment with "save this card" adds one: ask again once a payment is through.
  const refetchCards = savedCards.refetch;
  useEffect(() => {
    if (phase.name === "success" || phase.name === "processing") void refetchCards();
  }, [phase.name, refetchCards]);

  const checkoutRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (selected) checkoutRef.current?.scrollIntoView?.({ behavior: "smooth", block: "start" });
  }, [selected]);

  const tiers = useMemo(() => (tiersQuery.data ? tierViews(tiersQuery.data) : []), [tiersQuery.data]);
  const bestBonus = Math.max(0, ...tiers.map((tier) => tier.bonusPct));
  const locked = phase.name === "confirming";
  // Without a publishable key the server cannot take payments at all.
  const paymentsOff = configQuery.data !== undefined && !configQuery.data.publishable_key;

  if (phase.name === "success") {
    return (
      <PageContainer>
        <SuccessPanel tokensAdded={phase.tokensAdded} balance={phase.balance} returnPath={returnPath}
          onBuyMore={flow.buyMore} />
      </PageContainer>
    );
  }

  const options = intent ? elementsOptions(intent.data.client_secret, lang) : null;
  const selectedTier = selected ? tiersQuery.data?.[selected] : undefined;

  return (
    <PageContainer>
      <PageHeader title={t("payment.title")} subtitle={t("payment.subtitle")} />
      {returnPath ? (
        <p className="-mt-3 mb-6 flex items-center gap-2 text-sm text-slate-600">
          <Icon name="chat" className="size-4 text-brand-600" />
          {t("payment.returnNote")}
        </p>
      ) : null}
      {configQuery.data && !paymentsOff ? <TestModeBanner config={configQuery.data} /> : null}
      {paymentsOff ? (
        <Alert tone="warning" className="mb-6" data-testid="payments-off">{t("errors.payments_not_configured")}</Alert>
      ) : null}

      {phase.name === "failed" ? (
        <Alert tone="error" className="mb-6" role="alert" title={t("payment.failedTitle")}
          data-testid="payment-failed">
          <p>{t("payment.failedBody")}</p>
        </Alert>
      ) : null}

      {phase.name === "processing" || phase.name === "pending" || phase.name === "checkFailed" ? (
        <Alert tone={phase.name === "checkFailed" ? "error" : "info"} className="mb-6"
          role={phase.name === "checkFailed" ? "alert" : "status"}
          title={t(`payment.${phase.name}Title`)}>
          <p>{phase.name === "checkFailed" ? errorText(i18n, phase.error)
            : t(phase.name === "processing" ? "payment.processingBody" : "payment.pendingBody")}</p>
          <div className="flex flex-wrap gap-2 pt-2">
            <Button size="sm" variant="secondary" onClick={() => void flow.settle(phase.paymentIntentId)}>
              {t("payment.checkAgain")}
            </Button>
            {returnPath ? (
              <Link href={returnPath} className={buttonClasses("ghost", "sm")}>{t("payment.backToChat")}</Link>
            ) : null}
          </div>
        </Alert>
      ) : null}

      {tiersQuery.isPending ? (
        <div className="grid gap-4 sm:grid-cols-3" aria-busy="true">
          {[0, 1, 2].map((i) => (
            <Card key={i} className="space-y-3 p-5">
              <Skeleton className="h-4 w-20" />
              <Skeleton className="h-10 w-28" />
              <Skeleton className="h-5 w-16" />
              <Skeleton className="h-10 w-full" />
            </Card>
          ))}
        </div>
      ) : tiersQuery.isError ? (
        <QueryError title={t("payment.loadError")} error={tiersQuery.error} onRetry={() => void tiersQuery.refetch()} />
      ) : (
        <ul className="grid gap-4 pt-2 sm:grid-cols-3">
          {tiers.map((tier) => (
            <li key={tier.id}>
              <TierCard tier={tier} selected={selected === tier.id} disabled={locked || paymentsOff}
                bestValue={bestBonus > 0 && tier.bonusPct === bestBonus} onSelect={flow.select} />
            </li>
          ))}
        </ul>
      )}

      <div ref={checkoutRef} className="scroll-mt-24">
        {selected ? (
          <Card className="mx-auto mt-8 max-w-xl animate-fade-in p-5 sm:p-6">
            <div className="mb-5 flex items-start justify-between gap-3">
              <h2 className="text-lg font-semibold text-slate-900">
                {t("payment.checkoutTitle", {
                  name: tierName(i18n, selected),
                  tokens: intent?.data.tokens ?? tiersQuery.data?.[selected]?.tokens ?? "",
                })}
              </h2>
              {!locked ? (
                <button type="button" onClick={flow.changePack}
                  className="shrink-0 rounded-md text-sm font-medium text-brand-700 hover:underline">
                  {t("payment.changePack")}
                </button>
              ) : null}
            </div>

            {selectedTier && cards.length > 0 && !paymentsOff ? (
              <OneClickBuy key={selected} tier={selected} amount={selectedTier.price} currency={selectedTier.currency}
                cards={cards} stripe={stripe.promise} locked={locked} onPaid={(id) => void flow.settle(id)} />
            ) : null}
            <label className="mb-4 flex items-start gap-2.5 text-sm text-slate-700">
              <input type="checkbox" data-testid="save-card" className="mt-0.5 size-4 rounded border-slate-300 accent-brand-600"
                checked={saveCard} disabled={locked} onChange={(event) => flow.setSaveCard(event.target.checked)} />
              <span>
                {t("cards.save")}
                <span className="block text-xs text-slate-500">{t("cards.saveHint")}</span>
              </span>
            </label>
            {phase.name === "preparing" ? (
              <div role="status" className="flex items-center gap-3 py-10 text-sm text-slate-500">
                <Spinner /> {t("payment.preparing")}
              </div>
            ) : phase.name === "intentFailed" ? (
              <QueryError role="alert" error={phase.error} onRetry={flow.retryIntent} />
            ) : configQuery.isError ? (
              <QueryError role="alert" error={configQuery.error} onRetry={() => void configQuery.refetch()} />
            ) : stripe.failed ? (
              <QueryError role="alert" error={null} message={t("payment.stripeLoadError")} onRetry={stripe.retry} />
            ) : intent && stripe.promise && options ? (
              <Elements key={`${intent.data.client_secret}:${lang}`} stripe={stripe.promise} options={options}>
                <CheckoutForm
                  intent={intent.data}
                  returnUrl={stripeReturnUrl(returnPath)}
                  locked={locked}
                  initialError={phase.name === "checkout" ? problemText(i18n, phase.problem) : null}
                  onPaid={(id) => void flow.settle(id)}
                />
              </Elements>
            ) : (
              <div className="space-y-3 py-4" aria-busy="true">
                <Skeleton className="h-11 w-full" />
                <Skeleton className="h-11 w-full" />
                <Skeleton className="h-12 w-full" />
              </div>
            )}

            {locked ? (
              <div role="status" className="mt-4 flex items-center gap-3 rounded-lg bg-brand-50 p-3 text-sm text-brand-900">
                <Spinner className="size-4" /> {t("payment.confirming")}
              </div>
            ) : null}
          </Card>
        ) : null}
      </div>

      <PlansSection stripe={stripe.promise} disabled={paymentsOff || locked} packOpen={selected !== null}
        onOpen={flow.changePack} />
    </PageContainer>
  );
}

function SuccessPanel({ tokensAdded, balance, returnPath, onBuyMore }: {
  tokensAdded: number;
  balance: number;
  returnPath: string | null;
  onBuyMore: () => void;
}) {
  const { t } = useI18n();
  const primaryRef = useRef<HTMLAnchorElement>(null);
  useEffect(() => primaryRef.current?.focus(), []);
  return (
    <Card className="mx-auto max-w-lg animate-fade-in p-8 text-center" data-testid="payment-success" role="status">
      <span className="mx-auto grid size-14 place-items-center rounded-full bg-emerald-100 text-emerald-600">
        <Icon name="check" className="size-8" />
      </span>
      <h1 className="mt-4 text-2xl font-semibold text-slate-900">{t("payment.successTitle")}</h1>
      <p className="mt-2 text-slate-600">{t("payment.successBody", { tokens: tokensAdded })}</p>
      <p className="mt-1 font-medium text-slate-800">{t("payment.newBalance", { balance })}</p>
      <div className="mt-6 flex flex-col justify-center gap-2 sm:flex-row">
        <Link ref={primaryRef} href={returnPath ?? "/chat"} className={buttonClasses("primary", "lg")}>
          <Icon name={returnPath ? "arrowLeft" : "chat"} className="size-4" />
          {t(returnPath ? "payment.backToChat" : "payment.startChatting")}
        </Link>
        <Button variant="secondary" size="lg" onClick={onBuyMore}>{t("payment.buyMore")}</Button>
      </div>
    </Card>
  );
}
