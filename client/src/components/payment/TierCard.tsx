import { useI18n } from "../../i18n/useI18n";
import { formatMoney, formatUnitPrice } from "../../lib/format";
import { Icon } from "../ui/Icon";
import { tierName, type TierView } from "./tiers";

interface TierCardProps {
  tier: TierView;
  selected: boolean;
  bestValue: boolean;
  disabled?: boolean;
  onSelect: (id: string) => void;
}

export function TierCard({ tier, selected, bestValue, disabled = false, onSelect }: TierCardProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  return (
    <button
      type="button"
      data-testid={`tier-${tier.id}`}
      aria-pressed={selected}
      disabled={disabled}
      onClick={() => onSelect(tier.id)}
      className={[
        "relative flex h-full w-full flex-col rounded-2xl bg-white p-5 text-left shadow-sm transition",
        "disabled:cursor-not-allowed disabled:opacity-60",
        selected
          ? "ring-2 ring-brand-600 shadow-md"
          : "ring-1 ring-slate-200 hover:-translate-y-0.5 hover:shadow-md hover:ring-brand-300",
      ].join(" ")}
    >
      {bestValue ? (
        <span className="absolute -top-2.5 right-4 rounded-full bg-brand-600 px-2.5 py-0.5 text-xs font-semibold text-white shadow-sm">
          {t("payment.bestValue")}
        </span>
      ) : null}
      <span className="text-sm font-semibold uppercase tracking-wide text-slate-500">{tierName(i18n, tier.id)}</span>
      <span className="mt-3 flex items-baseline gap-1.5">
        <span className="text-4xl font-bold tracking-tight text-slate-900 tabular-nums">{tier.tokens}</span>
        <span className="text-sm text-slate-500">{t("balance.unit")}</span>
      </span>
      <span className="mt-1 text-xl font-semibold text-slate-800">{formatMoney(tier.price, tier.currency, locale)}</span>
      <span className="mt-1 text-sm text-slate-500">
        {t("payment.perToken", { price: formatUnitPrice(tier.unitPrice, tier.currency, locale) })}
      </span>
      <span className="mt-3 min-h-6">
        {tier.bonusPct > 0 ? (
          <span className="inline-flex rounded-full bg-emerald-50 px-2.5 py-0.5 text-xs font-semibold text-emerald-700 ring-1 ring-inset ring-emerald-200">
            {t("payment.bonus", { pct: tier.bonusPct })}
          </span>
        ) : null}
      </span>
      {tier.description ? <span className="mt-3 text-sm text-slate-600">{tier.description}</span> : null}
      <span
        className={[
          "mt-5 inline-flex h-10 items-center justify-center gap-1.5 rounded-lg text-sm font-medium",
          selected ? "bg-brand-600 text-white" : "bg-slate-100 text-slate-700",
        ].join(" ")}
      >
        {selected ? <Icon name="check" className="size-4" /> : null}
        {selected ? t("payment.selected") : t("payment.choose")}
      </span>
    </button>
  );
}
