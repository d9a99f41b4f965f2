import { useState } from "react";
import { Link } from "wouter";
import { useAdminRefunds, useAdminStats } from "../../api/admin";
import { usePricingTiers } from "../../api/queries";
import type { AdminRefunds, AdminStats } from "../../api/types";
import { DailyTokensChart, RevenueChart, TopSpendersChart } from "../../components/admin/charts";
import { fillDays, totals } from "../../components/admin/stats";
import { Card } from "../../components/ui/Card";
import { Skeleton } from "../../components/ui/Skeleton";
import type { MessageKey } from "../../i18n/messages";
import { useI18n } from "../../i18n/useI18n";
import { formatMoney, formatNumber } from "../../lib/format";
import { QueryError } from "../../components/ui/QueryError";

export const PERIODS = [7, 30, 90] as const;

/** Revenue is summed by the server in one currency: the packs' own. */
function useCurrency(): string {
  const tiers = usePricingTiers();
  const first = tiers.data ? Object.values(tiers.data)[0] : undefined;
  return first?.currency ?? "usd";
}

function PeriodPicker({ days, onChange }: { days: number; onChange: (days: number) => void }) {
  const { t } = useI18n();
  return (
    <div role="group" aria-label={t("admin.period")} className="inline-flex rounded-lg bg-white p-0.5 shadow-sm ring-1 ring-slate-200">
      {PERIODS.map((n) => (
        <button
          key={n}
          type="button"
          aria-pressed={days === n}
          onClick={() => onChange(n)}
          className={[
            "h-8 rounded-md px-3 text-sm font-medium transition-colors",
            days === n ? "bg-brand-600 text-white" : "text-slate-600 hover:bg-slate-100",
          ].join(" ")}
        >
          {t("admin.periodDays", { n })}
        </button>
      ))}
    </div>
  );
}

function Headline({ label, value, detail, testId }: { label: string; value: string; detail?: string; testId?: string }) {
  return (
    <Card className="min-w-0 p-4">
      <p className="text-xs font-medium uppercase tracking-wide text-slate-500">{label}</p>
      <p className="mt-1 truncate text-2xl font-semibold tabular-nums text-slate-900" data-testid={testId}>{value}</p>
      {detail ? <p className="mt-0.5 truncate text-xs text-slate-500">{detail}</p> : null}
    </Card>
  );
}

export function Overview({ stats, currency }: { stats: AdminStats; currency: string }) {
  const { t, locale } = useI18n();
  const sum = totals(stats.daily);
  const days = fillDays(stats.daily, stats.days);
  const top = stats.top_spenders[0];
  const usedShare = sum.tokensSold > 0 ? Math.round((sum.tokensUsed / sum.tokensSold) * 100) : null;
  return (
    <div className="space-y-4 sm:space-y-6" data-testid="admin-overview">
      <div className="grid grid-cols-2 gap-3 sm:gap-4 lg:grid-cols-4">
        <Headline label={t("admin.stat.revenue")} value={formatMoney(sum.revenueCents, currency, locale)}
          detail={t("admin.stat.lastDays", { days: stats.days })} testId="admin-stat-revenue" />
        <Headline label={t("admin.stat.sold")} value={formatNumber(sum.tokensSold, locale)}
          detail={t("admin.stat.lastDays", { days: stats.days })} testId="admin-stat-tokens-sold" />
        <Headline label={t("admin.stat.used")} value={formatNumber(sum.tokensUsed, locale)}
          detail={usedShare === null ? t("admin.stat.lastDays", { days: stats.days }) : t("admin.stat.usedShare", { pct: usedShare })}
          testId="admin-stat-tokens-used" />
        <Headline label={t("admin.stat.topSpender")} value={top ? top.username : "—"}
          detail={top ? t("admin.stat.topSpenderDetail", { n: formatNumber(top.tokens_used, locale) }) : t("admin.stat.nobody")} />
      </div>
      <DailyTokensChart data={days} days={stats.days} />
      <div className="grid gap-4 sm:gap-6 lg:grid-cols-2">
        <RevenueChart data={days} days={stats.days} currency={currency} />
        <TopSpendersChart spenders={stats.top_spenders} days={stats.days} />
      </div>
      {top ? (
        <p className="text-xs text-slate-500">
          {t("admin.overview.usersHint")}{" "}
          <Link href="/admin/users" className="font-medium text-brand-700 hover:underline">{t("admin.tab.users")}</Link>
        </p>
      ) : null}
    </div>
  );
}

const REASONS: Partial<Record<string, MessageKey>> = {
  wrong: "admin.refunds.reason.wrong",
  incomplete: "admin.refunds.reason.incomplete",
  harmful: "admin.refunds.reason.harmful",
  other: "admin.refunds.reason.other",
};

type RefundRow = { key: string; label: string; count: number; tokens: number };

function RefundsTable({ title, heading, rows, testId }: { title: string; heading: string; rows: RefundRow[]; testId: string }) {
  const { t, locale } = useI18n();
  return (
    <table className="w-full text-left text-sm" data-testid={testId}>
      <caption className="px-4 pb-1 pt-3 text-left text-xs font-medium uppercase tracking-wide text-slate-500">{title}</caption>
      <thead className="bg-slate-50 text-xs uppercase text-slate-500">
        <tr>
          <th scope="col" className="px-4 py-2">{heading}</th>
          <th scope="col" className="px-4 py-2 text-right">{t("admin.refunds.count")}</th>
          <th scope="col" className="px-4 py-2 text-right">{t("admin.refunds.tokens")}</th>
        </tr>
      </thead>
      <tbody className="divide-y divide-slate-100">
        {rows.map((row) => (
          <tr key={row.key}>
            <th scope="row" className="px-4 py-2 font-medium text-slate-900">{row.label}</th>
            <td className="px-4 py-2 text-right tabular-nums">{formatNumber(row.count, locale)}</td>
            <td className="px-4 py-2 text-right tabular-nums">{formatNumber(row.tokens, locale)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Refunded AI replies of the period, by the reason people gave and by the reply's model. */
export function Refunds({ refunds, days }: { refunds: AdminRefunds; days: number }) {
  const { t } = useI18n();
  const byReason = refunds.by_reason.map((r) => {
    const label = REASONS[r.reason];
    return { key: r.reason, label: label ? t(label) : r.reason, count: r.count, tokens: r.tokens };
  });
  const byModel = refunds.by_model.map((m) => ({
    key: m.model ?? "",
    label: m.model ?? t("admin.refunds.unknownModel"),
    count: m.count,
    tokens: m.tokens,
  }));
  return (
    <Card className="overflow-hidden" data-testid="admin-refunds">
      <h3 className="px-4 pt-4 text-sm font-semibold text-slate-900">{t("admin.refunds.title")}</h3>
      <p className="sr-only">{t("admin.refunds.caption", { days })}</p>
      {byReason.length === 0 ? (
        <p className="px-4 pb-4 pt-1 text-sm text-slate-500">{t("admin.refunds.none", { days })}</p>
      ) : (
        <div className="grid gap-2 pb-2 sm:grid-cols-2">
          <RefundsTable title={t("admin.refunds.byReason")} heading={t("admin.refunds.reason")} rows={byReason} testId="admin-refunds-by-reason" />
          <RefundsTable title={t("admin.refunds.byModel")} heading={t("admin.refunds.model")} rows={byModel} testId="admin-refunds-by-model" />
        </div>
      )}
    </Card>
  );
}

function RefundsSection({ days }: { days: number }) {
  const { t } = useI18n();
  const refunds = useAdminRefunds(days);
  if (refunds.isPending) return <Card className="p-4"><Skeleton className="h-16 w-full" /></Card>;
  if (refunds.isError) {
    return <QueryError title={t("admin.refunds.loadError")} error={refunds.error} onRetry={() => void refunds.refetch()} />;
  }
  return <Refunds refunds={refunds.data} days={days} />;
}

export function OverviewTab() {
  const i18n = useI18n();
  const { t } = i18n;
  const [days, setDays] = useState<number>(30);
  const stats = useAdminStats(days);
  const currency = useCurrency();
  return (
    <section aria-labelledby="admin-overview-title">
      <div className="mb-4 flex flex-wrap items-center justify-between gap-3">
        <h2 id="admin-overview-title" className="text-lg font-semibold text-slate-900">{t("admin.tab.overview")}</h2>
        <PeriodPicker days={days} onChange={setDays} />
      </div>
      {stats.isPending ? (
        <div className="space-y-4" aria-busy="true">
          <div className="grid grid-cols-2 gap-3 lg:grid-cols-4">
            {[0, 1, 2, 3].map((i) => <Card key={i} className="p-4"><Skeleton className="h-12 w-full" /></Card>)}
          </div>
          <Card className="p-5"><Skeleton className="h-60 w-full" /></Card>
        </div>
      ) : stats.isError ? (
        <QueryError title={t("admin.stats.loadError")} error={stats.error} onRetry={() => void stats.refetch()} />
      ) : (
        <Overview stats={stats.data} currency={currency} />
      )}
      <div className="mt-4 sm:mt-6">
        <RefundsSection days={days} />
      </div>
    </section>
  );
}
