import { Elements } from "@stripe/react-stripe-js";
import type { Stripe } from "@stripe/stripe-js";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "wouter";
import { useApi } from "../../api/ApiProvider";
import {
  allotmentLeft,
  refreshBilling,
  useCustomerPortal,
  useLots,
  usePlans,
  useSubscription,
  useSubscriptionAction,
  type PlanId,
  type Subscription,
} from "../../api/billing";
import { ApiError } from "../../api/errors";
import { awaitSubscription, formatPeriodEnd, hasLivePlan, isUpgrade, planName } from "../../components/billing/plans";
import { SubscriptionStatusBadge } from "../../components/billing/SubscriptionStatusBadge";
import { CheckoutForm } from "../../components/payment/CheckoutForm";
import { elementsOptions } from "../../components/payment/elementsOptions";
import { describeStripeError } from "../../components/payment/stripeErrors";
import { Alert } from "../../components/ui/Alert";
import { Button, buttonClasses } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { ConfirmDialog } from "../../components/ui/ConfirmDialog";
import { Icon } from "../../components/ui/Icon";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatDate, formatNumber } from "../../lib/format";

type Dialog = { kind: "change"; plan: PlanId } | { kind: "cancel" } | null;

/** The person's plan: status, renewal, tokens left, change / cancel / resume, and fixing a failed payment. */
export function SubscriptionCard({ stripe }: { stripe: Promise<Stripe | null> | null }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const subscription = useSubscription();
  const plans = usePlans();
  const lots = useLots();
  const action = useSubscriptionAction();
  const portal = useCustomerPortal();
  const [dialog, setDialog] = useState<Dialog>(null);
  const [changedTo, setChangedTo] = useState<PlanId | null>(null);

  if (subscription.isPending) {
    return <Card className="p-5" aria-busy="true"><Skeleton className="h-32 w-full" /></Card>;
  }
  if (subscription.isError) {
    return <QueryError title={t("subscription.loadError")} error={subscription.error} onRetry={() => void subscription.refetch()} />;
  }
  const sub = subscription.data.subscription;
  if (!sub || sub.status === "canceled" || sub.status === "incomplete_expired") {
    return (
      <Card className="p-5" data-testid="no-subscription">
        <h2 className="text-lg font-semibold text-slate-900">{t("subscription.plan")}</h2>
        {sub ? <p className="mt-2"><SubscriptionStatusBadge subscription={sub} /></p> : null}
        <p className="mt-2 text-sm text-slate-600">{t("subscription.none")}</p>
        <Link href="/payment#plans" className={buttonClasses("primary", "md", "mt-4")}>{t("subscription.seePlans")}</Link>
      </Card>
    );
  }

  const planList = plans.data?.items ?? [];
  const allotment = allotmentLeft(lots.data?.items ?? []);
  const periodEnd = formatPeriodEnd(sub, locale);
  const live = hasLivePlan(sub);
  const others = planList.filter((plan) => plan.id !== sub.plan);

  const confirm = () => {
    if (!dialog) return;
    const request = dialog.kind === "change" ? ({ kind: "update", plan: dialog.plan } as const) : ({ kind: "cancel" } as const);
    action.mutate(request, {
      onSuccess: () => {
        setChangedTo(dialog.kind === "change" ? dialog.plan : null);
        setDialog(null);
      },
    });
  };

  return (
    <Card className="p-5" data-testid="subscription">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div>
          <p className="text-xs font-medium uppercase tracking-wide text-slate-500">{t("subscription.plan")}</p>
          <h2 className="mt-0.5 text-xl font-semibold text-slate-900" data-testid="subscription-plan">{planName(i18n, sub.plan)}</h2>
        </div>
        <SubscriptionStatusBadge subscription={sub} />
      </div>

      <dl className="mt-4 grid gap-3 sm:grid-cols-2">
        <div className="rounded-xl bg-slate-50 px-3 py-2.5">
          <dt className="text-xs text-slate-500">{t("subscription.status")}</dt>
          <dd className="mt-0.5 text-sm font-medium text-slate-900" data-testid="subscription-renewal">
            {sub.cancel_at_period_end ? t("subscription.endsOn", { date: periodEnd }) : t("subscription.renews", { date: periodEnd })}
            {sub.scheduled_plan && !sub.cancel_at_period_end ? (
              <span className="block text-xs font-normal text-slate-600">
                {t("subscription.switchesTo", { plan: planName(i18n, sub.scheduled_plan), date: periodEnd })}
              </span>
            ) : null}
          </dd>
        </div>
        <div className="rounded-xl bg-brand-50 px-3 py-2.5 ring-1 ring-inset ring-brand-200">
          <dt className="text-xs text-slate-500">{t("subscription.allotmentLeft")}</dt>
          <dd className="mt-0.5 text-sm font-medium text-brand-900" data-testid="allotment-left">
            {allotment.remaining > 0 ? i18n.plural("common.tokens", allotment.remaining) : t("subscription.allotmentNone")}
            {allotment.expiresAt ? (
              <span className="block text-xs font-normal text-slate-600" data-testid="allotment-expiry">
                {t("subscription.allotmentExpires", { date: formatDate(allotment.expiresAt, locale) })}
              </span>
            ) : null}
          </dd>
        </div>
      </dl>

      <PaymentProblem subscription={sub} stripe={stripe} />

      {changedTo ? (
        <Alert tone="success" role="status" className="mt-4">{t("subscription.changed", { plan: planName(i18n, changedTo) })}</Alert>
      ) : null}
      {action.isError ? <Alert tone="error" role="alert" className="mt-4">{errorText(i18n, action.error)}</Alert> : null}

      {live ? (
        <div className="mt-5 flex flex-wrap gap-2 border-t border-slate-100 pt-4">
          {!sub.cancel_at_period_end
            ? others.map((plan) => (
                <Button key={plan.id} variant="secondary" size="sm" data-testid={`change-to-${plan.id}`}
                  disabled={action.isPending} onClick={() => setDialog({ kind: "change", plan: plan.id })}>
                  {t("subscription.changeTo", { plan: planName(i18n, plan.id, plan.name) })}
                  <span className="text-slate-500">· {formatNumber(plan.monthly_tokens, locale)}</span>
                </Button>
              ))
            : null}
          {sub.cancel_at_period_end ? (
            <Button size="sm" data-testid="resume-subscription" busy={action.isPending} disabled={action.isPending}
              onClick={() => action.mutate({ kind: "resume" })}>
              {t("subscription.resume")}
            </Button>
          ) : (
            <Button variant="ghost" size="sm" data-testid="cancel-subscription" disabled={action.isPending}
              onClick={() => setDialog({ kind: "cancel" })}>
              {t("subscription.cancel")}
            </Button>
          )}
          {sub.portal_available ? (
            <Button variant="ghost" size="sm" data-testid="customer-portal" busy={portal.isPending}
              disabled={portal.isPending} icon={<Icon name="external" className="size-4" />} onClick={() => portal.mutate()}>
              {t("subscription.portal")}
            </Button>
          ) : null}
        </div>
      ) : null}
      {portal.isError ? (
        <Alert tone="warning" role="alert" className="mt-3">
          {portal.error instanceof ApiError && portal.error.code === "portal_unavailable"
            ? t("subscription.portalUnavailable") : errorText(i18n, portal.error)}
        </Alert>
      ) : null}

      {dialog?.kind === "change" ? (
        <ConfirmDialog
          title={t("subscription.changeTo", { plan: planName(i18n, dialog.plan) })}
          confirmLabel={t("subscription.changeConfirm")}
          cancelLabel={t("subscription.back")}
          busy={action.isPending}
          onConfirm={confirm}
          onCancel={() => setDialog(null)}
        >
          {isUpgrade(planList, sub.plan, dialog.plan)
            ? t("subscription.upgradeBody")
            : t("subscription.downgradeBody", { date: periodEnd })}
        </ConfirmDialog>
      ) : dialog?.kind === "cancel" ? (
        <ConfirmDialog
          title={t("subscription.cancelTitle")}
          confirmLabel={t("subscription.cancelConfirm")}
          cancelLabel={t("subscription.keep")}
          tone="danger"
          busy={action.isPending}
          onConfirm={confirm}
          onCancel={() => setDialog(null)}
        >
          {t("subscription.cancelBody", { date: periodEnd })}
        </ConfirmDialog>
      ) : null}
    </Card>
  );
}

/**
 * past_due / unpaid / an unfinished first payment: say why no tokens come, and let the
 * person pay the open invoice here (a new card in the Payment Element, or the bank's check).
 */
function PaymentProblem({ subscription, stripe }: { subscription: Subscription; stripe: Promise<Stripe | null> | null }) {
  const i18n = useI18n();
  const { t, lang } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const [open, setOpen] = useState(false);
  const [state, setState] = useState<"idle" | "working" | "fixed">("idle");
  const [error, setError] = useState<string | null>(null);
  const { status, problem, client_secret: clientSecret } = subscription;
  const troubled = status === "past_due" || status === "unpaid" || status === "incomplete" || problem !== null;

  const paid = async () => {
    setState("working");
    setOpen(false);
    try {
      await awaitSubscription(api, { deadlineMs: 10_000 });
    } finally {
      await refreshBilling(queryClient);
      setState("fixed");
    }
  };

  const verify = async () => {
    const client = stripe ? await stripe : null;
    if (!client || !clientSecret) {
      setError(t("payment.stripeLoadError"));
      return;
    }
    setState("working");
    setError(null);
    const result = await client.handleNextAction({ clientSecret });
    if (result.error) {
      setState("idle");
      setError(describeStripeError(i18n, result.error));
    } else {
      await paid();
    }
  };

  if (state === "fixed") {
    return <Alert tone="success" role="status" className="mt-4" data-testid="subscription-fixed">{t("subscription.fixed")}</Alert>;
  }
  if (!troubled) return null;

  const [titleKey, bodyKey] =
    problem === "requires_action" ? (["subscription.actionTitle", "subscription.actionBody"] as const)
      : status === "unpaid" ? (["subscription.unpaidTitle", "subscription.unpaidBody"] as const)
        : status === "incomplete" ? (["subscription.actionTitle", "subscription.incompleteBody"] as const)
          : (["subscription.pastDueTitle", "subscription.pastDueBody"] as const);

  return (
    <Alert tone="error" role="alert" className="mt-4" title={t(titleKey)} data-testid="subscription-problem">
      <p>{t(bodyKey)}</p>
      {error ? <p className="font-medium" data-testid="fix-card-error">{error}</p> : null}
      {clientSecret && !open ? (
        <Button size="sm" className="mt-2" data-testid="fix-card" busy={state === "working"} disabled={state === "working" || !stripe}
          onClick={() => (problem === "requires_action" ? void verify() : setOpen(true))}>
          {t("subscription.fixCard")}
        </Button>
      ) : null}
      {open && clientSecret && stripe ? (
        <div className="mt-3 rounded-xl bg-white p-4 text-slate-900">
          <p className="mb-3 font-semibold">{t("subscription.fixTitle")}</p>
          <Elements key={`${clientSecret}:${lang}`} stripe={stripe} options={elementsOptions(clientSecret, lang)}>
            <CheckoutForm intent={{ amount: 0, currency: "usd" }} returnUrl={new URL("/subscription", window.location.origin).toString()}
              locked={state === "working"} submitTestId="fix-card-pay" submitLabel={t("subscription.fixPayPlain")}
              onPaid={() => void paid()} />
          </Elements>
        </div>
      ) : null}
    </Alert>
  );
}
