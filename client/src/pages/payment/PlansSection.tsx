import { Elements } from "@stripe/react-stripe-js";
import type { Stripe } from "@stripe/stripe-js";
import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link } from "wouter";
import { useApi } from "../../api/ApiProvider";
import {
  createSubscription,
  refreshBilling,
  usePlans,
  useSubscription,
  type PlanId,
  type Subscription,
  type SubscriptionPlan,
} from "../../api/billing";
import { awaitSubscription, hasLivePlan, planName } from "../../components/billing/plans";
import { CheckoutForm } from "../../components/payment/CheckoutForm";
import { elementsOptions } from "../../components/payment/elementsOptions";
import { Alert } from "../../components/ui/Alert";
import { buttonClasses } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";
import { formatMoney } from "../../lib/format";
import { newIdempotencyKey } from "../../lib/ids";

type Phase =
  | { name: "idle" }
  | { name: "creating"; request: number }
  | { name: "checkout"; clientSecret: string }
  | { name: "activating" }
  | { name: "active"; subscription: Subscription }
  | { name: "pending" }
  | { name: "error"; error: unknown };

function returnUrl(): string {
  return new URL("/subscription", window.location.origin).toString();
}

interface PlansSectionProps {
  stripe: Promise<Stripe | null> | null;
  /** Payments are off on this server: nothing can be bought. */
  disabled: boolean;
  /** A pack's checkout is open: close the plan's. */
  packOpen: boolean;
  onOpen: () => void;
}

/**
 * Monthly plans beside the packs. Subscribing creates the subscription on the server,
 * confirms its first invoice's PaymentIntent here with the Payment Element (3D Secure
 * included), then waits until the server has the subscription active.
 */
export function PlansSection({ stripe, disabled, packOpen, onOpen }: PlansSectionProps) {
  const i18n = useI18n();
  const { t, plural, locale, lang } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const plans = usePlans();
  const current = useSubscription();
  const [plan, setPlan] = useState<PlanId | null>(null);
  const [phase, setPhase] = useState<Phase>({ name: "idle" });
  const requests = useRef(0);
  const checkoutRef = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (packOpen && phase.name !== "activating") {
      requests.current += 1;
      setPlan(null);
      setPhase({ name: "idle" });
    }
    // Only a pack being opened closes the plan's checkout.
  }, [packOpen]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => {
    if (plan) checkoutRef.current?.scrollIntoView?.({ behavior: "smooth", block: "start" });
  }, [plan]);

  const live = hasLivePlan(current.data?.subscription) ? current.data?.subscription ?? null : null;
  const busy = phase.name === "activating";

  const activate = async () => {
    setPhase({ name: "activating" });
    try {
      const outcome = await awaitSubscription(api);
      await refreshBilling(queryClient);
      setPhase(outcome.kind === "active" ? { name: "active", subscription: outcome.subscription } : { name: "pending" });
    } catch (error) {
      setPhase({ name: "error", error });
    }
  };

  const choose = (id: PlanId) => {
    if (busy || disabled) return;
    onOpen();
    setPlan(id);
    const request = ++requests.current;
    setPhase({ name: "creating", request });
    // One Idempotency-Key per attempt: a doubled click subscribes once.
    createSubscription(api, id, newIdempotencyKey()).then(
      (created) => {
        if (requests.current !== request) return;
        if (created.client_secret) setPhase({ name: "checkout", clientSecret: created.client_secret });
        else void activate();
      },
      (error: unknown) => {
        if (requests.current === request) setPhase({ name: "error", error });
      },
    );
  };

  const close = () => {
    requests.current += 1;
    setPlan(null);
    setPhase({ name: "idle" });
  };

  if (plans.isError) {
    return <QueryError className="mt-10" title={t("plans.loadError")} error={plans.error} onRetry={() => void plans.refetch()} />;
  }
  const items = plans.data?.items ?? [];
  if (plans.data && items.length === 0) return null;
  const chosen = items.find((item) => item.id === plan) ?? null;

  return (
    <section className="mt-12" aria-labelledby="plans-title" id="plans">
      <h2 id="plans-title" className="text-xl font-semibold tracking-tight text-slate-900">{t("plans.title")}</h2>
      <p className="mt-1 text-sm text-slate-500">{t("plans.subtitle")}</p>
      {plans.isPending ? (
        <div className="mt-4 grid gap-4 sm:grid-cols-3" aria-busy="true">
          {[0, 1, 2].map((i) => <Card key={i} className="p-5"><Skeleton className="h-28 w-full" /></Card>)}
        </div>
      ) : (
        <ul className="mt-4 grid gap-4 sm:grid-cols-3">
          {items.map((item) => (
            <li key={item.id}>
              <PlanCard plan={item} selected={plan === item.id} current={live?.plan === item.id}
                disabled={disabled || busy || live !== null} onSelect={choose} />
            </li>
          ))}
        </ul>
      )}
      {live ? (
        <p className="mt-3 text-sm">
          <Link href="/subscription" className="font-medium text-brand-700 hover:underline">{t("plans.manage")}</Link>
        </p>
      ) : null}

      <div ref={checkoutRef} className="scroll-mt-24">
        {chosen ? (
          <Card className="mx-auto mt-8 max-w-xl animate-fade-in p-5 sm:p-6" data-testid="subscribe-checkout">
            <div className="mb-5 flex items-start justify-between gap-3">
              <h3 className="text-lg font-semibold text-slate-900">
                {t("plans.checkoutTitle", { name: planName(i18n, chosen.id, chosen.name), tokens: chosen.monthly_tokens })}
              </h3>
              {!busy && phase.name !== "active" ? (
                <button type="button" onClick={close}
                  className="shrink-0 rounded-md text-sm font-medium text-brand-700 hover:underline">
                  {t("plans.cancelCheckout")}
                </button>
              ) : null}
            </div>
            {phase.name === "creating" ? (
              <div role="status" className="flex items-center gap-3 py-10 text-sm text-slate-500">
                <Spinner /> {t("plans.preparing")}
              </div>
            ) : phase.name === "error" ? (
              <QueryError role="alert" error={phase.error} onRetry={() => choose(chosen.id)} />
            ) : phase.name === "checkout" && stripe ? (
              <Elements key={`${phase.clientSecret}:${lang}`} stripe={stripe} options={elementsOptions(phase.clientSecret, lang)}>
                <CheckoutForm
                  intent={{ amount: chosen.price_cents, currency: chosen.currency }}
                  returnUrl={returnUrl()}
                  locked={false}
                  submitTestId="subscribe-button"
                  submitLabel={t("plans.subscribe", { amount: formatMoney(chosen.price_cents, chosen.currency, locale) })}
                  onPaid={() => void activate()}
                />
              </Elements>
            ) : phase.name === "activating" ? (
              <div role="status" className="flex items-center gap-3 rounded-lg bg-brand-50 p-3 text-sm text-brand-900">
                <Spinner className="size-4" /> {t("plans.activating")}
              </div>
            ) : phase.name === "active" ? (
              <Alert tone="success" role="status" data-testid="subscribe-success" title={t("plans.successTitle")}>
                <p>{t("plans.successBody", { name: planName(i18n, phase.subscription.plan) })}</p>
                <Link href="/subscription" className={buttonClasses("secondary", "sm", "mt-2")}>
                  {t("plans.toSubscription")}
                </Link>
              </Alert>
            ) : phase.name === "pending" ? (
              <Alert tone="info" role="status" data-testid="subscribe-pending">
                <p>{t("plans.pendingBody")}</p>
                <Link href="/subscription" className={buttonClasses("secondary", "sm", "mt-2")}>
                  {t("plans.toSubscription")}
                </Link>
              </Alert>
            ) : (
              <div className="space-y-3 py-4" aria-busy="true">
                <Skeleton className="h-11 w-full" />
                <Skeleton className="h-12 w-full" />
              </div>
            )}
            <p className="mt-4 text-xs text-slate-500">
              {plural("plans.expiresAfter", chosen.allotment_expires_after_days)}
            </p>
          </Card>
        ) : null}
      </div>
    </section>
  );
}

function PlanCard({ plan, selected, current, disabled, onSelect }: {
  plan: SubscriptionPlan;
  selected: boolean;
  current: boolean;
  disabled: boolean;
  onSelect: (id: PlanId) => void;
}) {
  const i18n = useI18n();
  const { t, plural, locale } = i18n;
  return (
    <button
      type="button"
      data-testid={`plan-${plan.id}`}
      aria-pressed={selected}
      disabled={disabled}
      onClick={() => onSelect(plan.id)}
      className={[
        "relative flex h-full w-full flex-col rounded-2xl bg-white p-5 text-left shadow-sm transition",
        "disabled:cursor-not-allowed",
        current ? "ring-2 ring-brand-600" : selected ? "ring-2 ring-brand-600 shadow-md"
          : "ring-1 ring-slate-200 hover:-translate-y-0.5 hover:shadow-md hover:ring-brand-300 disabled:opacity-60",
      ].join(" ")}
    >
      <span className="text-sm font-semibold uppercase tracking-wide text-slate-500">{planName(i18n, plan.id, plan.name)}</span>
      <span className="mt-3 text-2xl font-bold text-slate-900">
        {t("plans.perMonth", { price: formatMoney(plan.price_cents, plan.currency, locale) })}
      </span>
      <span className="mt-1 text-sm text-slate-600">{plural("plans.monthlyTokens", plan.monthly_tokens)}</span>
      <span className="mt-1 text-xs text-slate-500">{plural("plans.expiresAfter", plan.allotment_expires_after_days)}</span>
      <span className={[
        "mt-5 inline-flex h-10 items-center justify-center gap-1.5 rounded-lg text-sm font-medium",
        current || selected ? "bg-brand-600 text-white" : "bg-slate-100 text-slate-700",
      ].join(" ")}>
        {current ? <Icon name="check" className="size-4" /> : null}
        {current ? t("plans.current") : t("plans.choose")}
      </span>
    </button>
  );
}
