import { Elements } from "@stripe/react-stripe-js";
import type { Stripe, StripeElementsOptions } from "@stripe/stripe-js";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { Link, useSearch } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import {
  fetchTokenBalance,
  queryKeys,
  refreshTokenState,
  usePaymentConfig,
  usePricingTiers,
} from "../../api/queries";
import type { PaymentIntentCreated } from "../../api/types";
import { PageContainer } from "../../components/layout/AppShell";
import { awaitTokens } from "../../components/payment/awaitTokens";
import { CheckoutForm } from "../../components/payment/CheckoutForm";
import { useStripeLoader } from "../../components/payment/stripeLoader";
import { TestModeBanner } from "../../components/payment/TestModeBanner";
import { TierCard } from "../../components/payment/TierCard";
import { tierName, tierViews } from "../../components/payment/tiers";
import { Alert } from "../../components/ui/Alert";
import { Button, buttonClasses } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { Skeleton } from "../../components/ui/Skeleton";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { newIdempotencyKey } from "../../lib/ids";
import { safeReturnPath } from "../../lib/returnPath";

type Phase =
  | { name: "choose" }
  | { name: "checkout"; error?: string | null }
  | { name: "confirming"; paymentIntentId: string }
  | { name: "success"; tokensAdded: number; balance: number }
  | { name: "processing"; paymentIntentId: string }
  | { name: "pending"; paymentIntentId: string }
  /** Back from a redirect (or a bank) that failed: nothing was charged, no tokens. */
  | { name: "failed" };

interface ActiveIntent {
  tier: string;
  data: PaymentIntentCreated;
}

const BRAND_COLOR = "#0d9488";

/** Where a redirect-based payment method returns to (Stripe appends payment_intent=...). */
function stripeReturnUrl(returnPath: string | null): string {
  const url = new URL("/payment", window.location.origin);
  if (returnPath) url.searchParams.set("return", returnPath);
  return url.toString();
}

/**
 * Pick a pack → PaymentIntent (one Idempotency-Key per attempt) → Payment
 * Element → Stripe confirms → the server confirms the tokens are in → success.
 */
export default function PaymentPage() {
  const i18n = useI18n();
  const { t, lang } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const params = new URLSearchParams(useSearch());
  const returnPath = safeReturnPath(params.get("return"));
  const presetTier = params.get("tier");
  const redirectedIntent = params.get("payment_intent");
  // Stripe appends redirect_status=succeeded|processing|failed when it sends the person back.
  const redirectFailed = params.get("redirect_status") === "failed";

  const tiersQuery = usePricingTiers();
  const configQuery = usePaymentConfig();
  const loadStripe = useStripeLoader();
  const [stripeError, setStripeError] = useState(false);
  const [stripeAttempt, setStripeAttempt] = useState(0);
  const stripePromise = useMemo<Promise<Stripe | null> | null>(() => {
    if (!configQuery.data?.publishable_key) return null;
    void stripeAttempt; // a new attempt after a failed load
    return loadStripe(configQuery.data).catch(() => {
      setStripeError(true);
      return null;
    });
  }, [configQuery.data, loadStripe, stripeAttempt]);

  const [selected, setSelected] = useState<string | null>(null);
  const [intent, setIntent] = useState<ActiveIntent | null>(null);
  const [phase, setPhase] = useState<Phase>({ name: "choose" });
  const checkoutRef = useRef<HTMLDivElement>(null);
  // Only the most recently chosen pack may become the active PaymentIntent.
  const latestTier = useRef<string | null>(null);

  const createIntent = useMutation({
    mutationFn: (tier: string) =>
      unwrap(
        api.client.POST("/api/payment/create-payment-intent", {
          body: { tier },
          headers: { "Idempotency-Key": newIdempotencyKey() },
        }),
      ),
    onSuccess: (data, tier) => {
      if (latestTier.current !== tier) return;
      setIntent({ tier, data });
      setPhase({ name: "checkout" });
    },
  });

  const selectTier = useCallback(
    (id: string) => {
      setSelected(id);
      latestTier.current = id;
      checkoutRef.current?.scrollIntoView?.({ behavior: "smooth", block: "start" });
      if (intent?.tier === id) {
        setPhase({ name: "checkout" });
        return;
      }
      setIntent(null);
      setPhase({ name: "choose" });
      createIntent.mutate(id);
    },
    [intent, createIntent],
  );

  const settle = useCallback(
    async (paymentIntentId: string) => {
      setPhase({ name: "confirming", paymentIntentId });
      try {
        const outcome = await awaitTokens(api, paymentIntentId);
        if (outcome.kind === "credited") {
          const fresh = await queryClient
            .fetchQuery({ queryKey: queryKeys.tokenBalance, queryFn: () => fetchTokenBalance(api), staleTime: 0 })
            .catch(() => null);
          await refreshTokenState(queryClient);
          setPhase({ name: "success", tokensAdded: outcome.tokensAdded, balance: fresh?.available ?? outcome.balance });
        } else if (outcome.kind === "failed") {
          setPhase(intent ? { name: "checkout", error: t("payment.failedTitle") } : { name: "failed" });
        } else {
          await refreshTokenState(queryClient);
          setPhase(
            outcome.kind === "processing"
              ? { name: "processing", paymentIntentId }
              : { name: "pending", paymentIntentId },
          );
        }
      } catch (error) {
        setPhase({ name: "checkout", error: errorText(i18n, error) });
      }
    },
    [api, queryClient, t, i18n, intent],
  );

  // Deep links: ?tier=standard starts that pack; ?payment_intent=pi_... is Stripe's redirect back.
  const startedFromUrl = useRef(false);
  useEffect(() => {
    if (startedFromUrl.current) return;
    if (redirectedIntent && redirectFailed) {
      startedFromUrl.current = true;
      setPhase({ name: "failed" });
    } else if (redirectedIntent) {
      startedFromUrl.current = true;
      void settle(redirectedIntent);
    } else if (presetTier && tiersQuery.data && presetTier in tiersQuery.data) {
      startedFromUrl.current = true;
      selectTier(presetTier);
    }
  }, [redirectedIntent, redirectFailed, presetTier, tiersQuery.data, settle, selectTier]);

  const tiers = useMemo(() => (tiersQuery.data ? tierViews(tiersQuery.data) : []), [tiersQuery.data]);
  const bestBonus = Math.max(0, ...tiers.map((tier) => tier.bonusPct));
  const locked = phase.name === "confirming";
  // Without a publishable key the server cannot take payments at all.
  const paymentsOff = configQuery.data !== undefined && !configQuery.data.publishable_key;

  if (phase.name === "success") {
    return (
      <PageContainer>
        <SuccessPanel tokensAdded={phase.tokensAdded} balance={phase.balance} returnPath={returnPath}
          onBuyMore={() => { setPhase({ name: "choose" }); setIntent(null); setSelected(null); }} />
      </PageContainer>
    );
  }

  const elementsOptions: StripeElementsOptions | null = intent
    ? {
        clientSecret: intent.data.client_secret,
        locale: lang === "zh" ? "zh" : "en",
        appearance: {
          theme: "stripe",
          variables: { colorPrimary: BRAND_COLOR, borderRadius: "8px", fontSizeBase: "15px" },
        },
      }
    : null;

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

      {phase.name === "processing" || phase.name === "pending" ? (
        <Alert tone="info" className="mb-6" role="status"
          title={t(phase.name === "processing" ? "payment.processingTitle" : "payment.pendingTitle")}>
          <p>{t(phase.name === "processing" ? "payment.processingBody" : "payment.pendingBody")}</p>
          <div className="flex flex-wrap gap-2 pt-2">
            <Button size="sm" variant="secondary" onClick={() => void settle(phase.paymentIntentId)}>
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
        <Alert tone="error" title={t("payment.loadError")}>
          <p>{errorText(i18n, tiersQuery.error)}</p>
          <Button size="sm" variant="secondary" className="mt-2" onClick={() => void tiersQuery.refetch()}>
            {t("common.retry")}
          </Button>
        </Alert>
      ) : (
        <ul className="grid gap-4 pt-2 sm:grid-cols-3">
          {tiers.map((tier) => (
            <li key={tier.id}>
              <TierCard tier={tier} selected={selected === tier.id} disabled={locked || paymentsOff}
                bestValue={bestBonus > 0 && tier.bonusPct === bestBonus} onSelect={selectTier} />
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
                <button type="button" onClick={() => { setSelected(null); setPhase({ name: "choose" }); }}
                  className="shrink-0 rounded-md text-sm font-medium text-brand-700 hover:underline">
                  {t("payment.changePack")}
                </button>
              ) : null}
            </div>

            {createIntent.isPending ? (
              <div role="status" className="flex items-center gap-3 py-10 text-sm text-slate-500">
                <Spinner /> {t("payment.preparing")}
              </div>
            ) : createIntent.isError && !intent ? (
              <Alert tone="error" role="alert">
                <p>{errorText(i18n, createIntent.error)}</p>
                <Button size="sm" variant="secondary" className="mt-2" onClick={() => createIntent.mutate(selected)}>
                  {t("common.retry")}
                </Button>
              </Alert>
            ) : configQuery.isError ? (
              <Alert tone="error" role="alert">
                <p>{errorText(i18n, configQuery.error)}</p>
                <Button size="sm" variant="secondary" className="mt-2" onClick={() => void configQuery.refetch()}>
                  {t("common.retry")}
                </Button>
              </Alert>
            ) : stripeError ? (
              <Alert tone="error" role="alert">
                <p>{t("payment.stripeLoadError")}</p>
                <Button size="sm" variant="secondary" className="mt-2"
                  onClick={() => { setStripeError(false); setStripeAttempt((n) => n + 1); }}>
                  {t("common.retry")}
                </Button>
              </Alert>
            ) : intent && stripePromise && elementsOptions ? (
              <Elements key={`${intent.data.client_secret}:${lang}`} stripe={stripePromise} options={elementsOptions}>
                <CheckoutForm
                  intent={intent.data}
                  returnUrl={stripeReturnUrl(returnPath)}
                  locked={locked}
                  initialError={phase.name === "checkout" ? phase.error ?? null : null}
                  onPaid={(id) => void settle(id)}
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
