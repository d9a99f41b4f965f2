import { useState, type FormEvent } from "react";
import { useAutoTopup, useSaveAutoTopup, useSavedCards, type AutoTopup, type SavedCard } from "../../api/billing";
import { usePricingTiers } from "../../api/queries";
import type { PricingTiers } from "../../api/types";
import { tierName, tierViews } from "../../components/payment/tiers";
import { Alert } from "../../components/ui/Alert";
import { Badge, type BadgeTone } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { QueryError } from "../../components/ui/QueryError";
import { SelectField } from "../../components/ui/SelectField";
import { Skeleton } from "../../components/ui/Skeleton";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatMoney, fractionDigits } from "../../lib/format";
import { cardLabel } from "../../components/billing/cards";

/** Top-ups a month the form suggests to someone who never set the caps. */
const SUGGESTED_MONTHLY_COUNT = 3;

const stateTones: Record<string, BadgeTone> = { off: "neutral", active: "success", paused: "warning" };

/** Automatic top-up: the settings form, and what it is doing (on / paused and why / this month). */
export function AutoTopupCard() {
  const { t } = useI18n();
  const topup = useAutoTopup();
  const tiers = usePricingTiers();
  const cards = useSavedCards();
  // Kept here, not in the form: saving re-creates the form, and "Saved." must outlive it.
  const save = useSaveAutoTopup();
  const currency = (tiers.data && topup.data ? tiers.data[topup.data.tier] ?? Object.values(tiers.data)[0] : undefined)?.currency ?? "usd";

  return (
    <Card className="p-5" data-testid="auto-topup">
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div>
          <h2 className="text-lg font-semibold text-slate-900">{t("topup.title")}</h2>
          <p className="mt-1 max-w-2xl text-sm text-slate-500">{t("topup.subtitle")}</p>
        </div>
        {topup.data ? (
          <Badge tone={stateTones[topup.data.state] ?? "neutral"}>
            <span data-testid="auto-topup-state">{t(`topup.state.${topup.data.state}`)}</span>
          </Badge>
        ) : null}
      </div>
      {topup.isPending || tiers.isPending || cards.isPending ? (
        <Skeleton className="mt-4 h-40 w-full" />
      ) : topup.isError ? (
        <QueryError className="mt-4" title={t("topup.loadError")} error={topup.error} onRetry={() => void topup.refetch()} />
      ) : tiers.isError ? (
        <QueryError className="mt-4" error={tiers.error} onRetry={() => void tiers.refetch()} />
      ) : (
        <>
          <TopupStatus topup={topup.data} currency={currency} />
          {/* A fresh form whenever the server's settings change (after saving, or a pause). */}
          <TopupForm key={JSON.stringify(settingsOf(topup.data))} topup={topup.data} tiers={tiers.data}
            cards={cards.data?.items ?? []} save={save} currency={currency} />
        </>
      )}
    </Card>
  );
}

function settingsOf(topup: AutoTopup) {
  const { enabled, threshold, tier, monthly_max_count, monthly_max_amount, payment_method_id } = topup;
  return { enabled, threshold, tier, monthly_max_count, monthly_max_amount, payment_method_id };
}

function TopupStatus({ topup, currency }: { topup: AutoTopup; currency: string }) {
  const i18n = useI18n();
  const { t, plural, locale } = i18n;
  return (
    <div className="mt-4 space-y-3">
      {topup.state === "paused" ? (
        <Alert tone="warning" role="status" title={t("topup.pausedTitle")} data-testid="auto-topup-paused">
          <p>
            {topup.paused_reason && i18n.has(`topup.paused.${topup.paused_reason}`)
              ? t(`topup.paused.${topup.paused_reason}` as "topup.paused.other")
              : t("topup.paused.other")}
          </p>
          {topup.consecutive_failures > 0 ? <p>{plural("topup.failures", topup.consecutive_failures)}</p> : null}
          {topup.action_url ? (
            <a href={topup.action_url} className="font-medium text-brand-700 underline" data-testid="auto-topup-action">
              {t("topup.finish")}
            </a>
          ) : null}
        </Alert>
      ) : null}
      {topup.enabled ? (
        <p className="text-sm text-slate-600" data-testid="auto-topup-usage">
          {plural("topup.thisMonth", topup.this_month.count, {
            amount: formatMoney(topup.this_month.amount, currency, locale),
          })}
        </p>
      ) : null}
    </div>
  );
}

function wholeNumber(raw: string, min: number): number | null {
  if (!/^\d+$/.test(raw.trim())) return null;
  const n = Number(raw);
  return Number.isSafeInteger(n) && n >= min ? n : null;
}

function TopupForm({ topup, tiers, cards, save, currency }: {
  topup: AutoTopup;
  tiers: PricingTiers;
  cards: SavedCard[];
  save: ReturnType<typeof useSaveAutoTopup>;
  currency: string;
}) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const views = tierViews(tiers);
  const digits = fractionDigits(currency.toUpperCase());
  const [enabled, setEnabled] = useState(topup.enabled);
  const [threshold, setThreshold] = useState(String(topup.threshold));
  const [tier, setTier] = useState(topup.tier in tiers ? topup.tier : (views[0]?.id ?? ""));
  const [card, setCard] = useState(topup.payment_method_id ?? (cards.find((c) => c.is_default) ?? cards[0])?.id ?? "");
  // Caps of 0 are a person who never set them (no top-up could run): start from a
  // suggestion the form accepts (three of the chosen pack a month), not from invalid zeros.
  const unset = topup.monthly_max_count === 0 && topup.monthly_max_amount === 0;
  const [maxCount, setMaxCount] = useState(String(unset ? SUGGESTED_MONTHLY_COUNT : topup.monthly_max_count));
  const [maxAmount, setMaxAmount] = useState(() => {
    const cents = unset ? SUGGESTED_MONTHLY_COUNT * (tiers[tier]?.price ?? 0) : topup.monthly_max_amount;
    return (cents / 10 ** digits).toFixed(digits);
  });
  const [errors, setErrors] = useState<Record<string, string>>({});

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const thresholdN = wholeNumber(threshold, 1);
    const countN = wholeNumber(maxCount, 1);
    const amountN = Number(maxAmount);
    const next: Record<string, string> = {};
    if (thresholdN === null) next.threshold = t("topup.invalidNumber", { min: 1 });
    if (countN === null) next.maxCount = t("topup.invalidNumber", { min: 1 });
    if (!Number.isFinite(amountN) || amountN <= 0) next.maxAmount = t("topup.invalidNumber", { min: 1 });
    setErrors(next);
    if (Object.keys(next).length > 0 || thresholdN === null || countN === null) return;
    save.mutate({
      enabled,
      threshold: thresholdN,
      tier,
      monthly_max_count: countN,
      monthly_max_amount: Math.round(amountN * 10 ** digits),
      ...(card ? { payment_method_id: card } : {}),
    });
  };

  const noCard = cards.length === 0;
  return (
    <form onSubmit={submit} noValidate className="mt-4 space-y-4">
      {noCard ? <Alert tone="info">{t("topup.needsCard")}</Alert> : null}
      <label className="flex items-center gap-2.5 text-sm font-medium text-slate-800">
        <input type="checkbox" data-testid="auto-topup-enabled" className="size-4 accent-brand-600"
          checked={enabled} disabled={noCard && !enabled} onChange={(event) => setEnabled(event.target.checked)} />
        {t("topup.enabled")}
      </label>
      <div className="grid gap-4 sm:grid-cols-2">
        <TextField label={t("topup.threshold")} inputMode="numeric" name="threshold" value={threshold}
          onChange={(event) => setThreshold(event.target.value)} error={errors.threshold} />
        <SelectField label={t("topup.pack")} name="tier" value={tier} onChange={(event) => setTier(event.target.value)}
          options={views.map((view) => ({
            value: view.id,
            label: t("topup.packOption", {
              name: tierName(i18n, view.id), tokens: view.tokens, price: formatMoney(view.price, view.currency, locale),
            }),
          }))} />
        {cards.length > 0 ? (
          <SelectField label={t("topup.card")} name="card" value={card} onChange={(event) => setCard(event.target.value)}
            options={cards.map((c) => ({ value: c.id, label: cardLabel(i18n, c) }))} />
        ) : null}
        <TextField label={t("topup.maxCount")} inputMode="numeric" name="monthly_max_count" value={maxCount}
          onChange={(event) => setMaxCount(event.target.value)} error={errors.maxCount} />
        <TextField label={t("topup.maxAmount", { currency: currency.toUpperCase() })} inputMode="decimal"
          name="monthly_max_amount" value={maxAmount} onChange={(event) => setMaxAmount(event.target.value)}
          error={errors.maxAmount} />
      </div>
      {save.isError ? <Alert tone="error" role="alert">{errorText(i18n, save.error)}</Alert> : null}
      {save.isSuccess ? <Alert tone="success" role="status" data-testid="auto-topup-saved">{t("topup.saved")}</Alert> : null}
      <Button type="submit" data-testid="auto-topup-save" busy={save.isPending} disabled={save.isPending}>
        {t("topup.save")}
      </Button>
    </form>
  );
}
