/**
 * The dashboard's charts (Recharts). Each sits in a card with a title and a one-line
 * summary that screen readers get as the figure's description; without data the card
 * says so instead of drawing empty axes.
 */
import { useId, type ReactNode } from "react";
import {
  Bar,
  BarChart,
  CartesianGrid,
  ResponsiveContainer,
  Tooltip,
  XAxis,
  YAxis,
} from "recharts";
import type { DailyTotals, TopSpender } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { formatDay, formatMoney, formatNumber, fractionDigits } from "../../lib/format";
import { useMediaQuery } from "../../lib/useMediaQuery";
import { Card } from "../ui/Card";
import { Icon } from "../ui/Icon";

// Tailwind's palette, matching the history page's chart (bought teal, used amber).
export const SOLD_COLOR = "#14b8a6";
export const USED_COLOR = "#fbbf24";
const REVENUE_COLOR = "#0d9488";
const SPENDER_COLOR = "#f59e0b";
const GRID_COLOR = "#e2e8f0";
const TICK = { fill: "#64748b", fontSize: 11 };
const TOOLTIP_STYLE = {
  borderRadius: 8,
  border: "1px solid #e2e8f0",
  boxShadow: "0 4px 12px rgb(15 23 42 / 0.08)",
  fontSize: 12,
};

function useAnimate(): boolean {
  return !useMediaQuery("(prefers-reduced-motion: reduce)");
}

interface ChartCardProps {
  title: string;
  summary: string;
  empty: boolean;
  emptyText: string;
  testId: string;
  legend?: ReactNode;
  children: ReactNode;
  className?: string;
}

export function ChartCard({ title, summary, empty, emptyText, testId, legend, children, className = "" }: ChartCardProps) {
  const titleId = useId();
  const summaryId = useId();
  return (
    <Card className={`min-w-0 p-4 sm:p-5 ${className}`} data-testid={testId}>
      <figure aria-labelledby={titleId} aria-describedby={summaryId} className="m-0">
        <div className="flex flex-wrap items-start justify-between gap-x-4 gap-y-2">
          <figcaption>
            <h3 id={titleId} className="text-sm font-semibold text-slate-900">{title}</h3>
            <p id={summaryId} className="mt-0.5 text-xs text-slate-500">{summary}</p>
          </figcaption>
          {legend}
        </div>
        {empty ? (
          <div className="mt-4 flex h-40 flex-col items-center justify-center rounded-xl border border-dashed border-slate-200 text-center" data-testid="chart-empty">
            <Icon name="info" className="size-5 text-slate-400" />
            <p className="mt-2 max-w-xs px-4 text-sm text-slate-500">{emptyText}</p>
          </div>
        ) : (
          <div className="mt-4">{children}</div>
        )}
      </figure>
    </Card>
  );
}

function LegendDot({ color, label }: { color: string; label: string }) {
  return (
    <li className="flex items-center gap-1.5">
      <span className="size-2.5 rounded-sm" style={{ backgroundColor: color }} />
      {label}
    </li>
  );
}

interface DailyProps {
  data: readonly DailyTotals[];
  days: number;
}

/** Tokens sold vs used per day, two bars a day. */
export function DailyTokensChart({ data, days }: DailyProps) {
  const { t, locale } = useI18n();
  const animate = useAnimate();
  const sold = data.reduce((sum, d) => sum + d.tokens_sold, 0);
  const used = data.reduce((sum, d) => sum + d.tokens_used, 0);
  const rows = data.map((d) => ({ ...d, label: formatDay(d.day, locale) }));
  return (
    <ChartCard
      testId="admin-chart-daily"
      title={t("admin.chart.daily")}
      summary={t("admin.chart.dailySummary", { days, sold: formatNumber(sold, locale), used: formatNumber(used, locale) })}
      empty={sold === 0 && used === 0}
      emptyText={t("admin.chart.dailyEmpty", { days })}
      legend={
        <ul className="flex gap-4 text-xs text-slate-600">
          <LegendDot color={SOLD_COLOR} label={t("admin.chart.sold")} />
          <LegendDot color={USED_COLOR} label={t("admin.chart.used")} />
        </ul>
      }
    >
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={rows} margin={{ top: 4, right: 4, bottom: 0, left: 0 }} barGap={2}>
          <CartesianGrid vertical={false} stroke={GRID_COLOR} strokeDasharray="3 3" />
          <XAxis dataKey="label" tick={TICK} tickLine={false} axisLine={{ stroke: GRID_COLOR }} minTickGap={12} />
          <YAxis tick={TICK} tickLine={false} axisLine={false} allowDecimals={false} width="auto"
            tickFormatter={(v: number) => formatNumber(v, locale)} />
          <Tooltip cursor={{ fill: "rgb(148 163 184 / 0.12)" }} contentStyle={TOOLTIP_STYLE} />
          <Bar dataKey="tokens_sold" name={t("admin.chart.sold")} fill={SOLD_COLOR} radius={[3, 3, 0, 0]}
            maxBarSize={18} isAnimationActive={animate} />
          <Bar dataKey="tokens_used" name={t("admin.chart.used")} fill={USED_COLOR} radius={[3, 3, 0, 0]}
            maxBarSize={18} isAnimationActive={animate} />
        </BarChart>
      </ResponsiveContainer>
    </ChartCard>
  );
}

/** Revenue per day, one bar a day (days are separate sales, not a continuous curve). */
export function RevenueChart({ data, days, currency }: DailyProps & { currency: string }) {
  const { t, locale } = useI18n();
  const animate = useAnimate();
  const total = data.reduce((sum, d) => sum + d.revenue_cents, 0);
  const rows = data.map((d) => ({ ...d, label: formatDay(d.day, locale) }));
  const scale = 10 ** fractionDigits(currency.toUpperCase());
  const compact = new Intl.NumberFormat(locale, {
    style: "currency",
    currency: currency.toUpperCase(),
    notation: "compact",
    maximumFractionDigits: 0,
  });
  return (
    <ChartCard
      testId="admin-chart-revenue"
      title={t("admin.chart.revenue")}
      summary={t("admin.chart.revenueSummary", { days, total: formatMoney(total, currency, locale) })}
      empty={total === 0}
      emptyText={t("admin.chart.revenueEmpty", { days })}
    >
      <ResponsiveContainer width="100%" height={240}>
        <BarChart data={rows} margin={{ top: 4, right: 4, bottom: 0, left: 0 }}>
          <CartesianGrid vertical={false} stroke={GRID_COLOR} strokeDasharray="3 3" />
          <XAxis dataKey="label" tick={TICK} tickLine={false} axisLine={{ stroke: GRID_COLOR }} minTickGap={12} />
          <YAxis tick={TICK} tickLine={false} axisLine={false} width="auto"
            tickFormatter={(v: number) => compact.format(v / scale)} />
          <Tooltip cursor={{ fill: "rgb(148 163 184 / 0.12)" }} contentStyle={TOOLTIP_STYLE}
            formatter={(value) => [formatMoney(Number(value), currency, locale), t("admin.chart.revenueSeries")]} />
          <Bar dataKey="revenue_cents" name={t("admin.chart.revenueSeries")} fill={REVENUE_COLOR}
            radius={[3, 3, 0, 0]} maxBarSize={28} isAnimationActive={animate} />
        </BarChart>
      </ResponsiveContainer>
    </ChartCard>
  );
}

const NAME_CHARS = 14;

/** Who used the most tokens in the period, as horizontal bars. */
export function TopSpendersChart({ spenders, days }: { spenders: readonly TopSpender[]; days: number }) {
  const { t, locale } = useI18n();
  const animate = useAnimate();
  const top = spenders[0];
  const height = Math.max(120, spenders.length * 34 + 32);
  const short = (name: string) => (name.length > NAME_CHARS ? `${name.slice(0, NAME_CHARS - 1)}…` : name);
  return (
    <ChartCard
      testId="admin-chart-top-spenders"
      title={t("admin.chart.topSpenders")}
      summary={top
        ? t("admin.chart.topSummary", { days, name: top.username, n: formatNumber(top.tokens_used, locale) })
        : t("admin.chart.topSummaryNone", { days })}
      empty={spenders.length === 0}
      emptyText={t("admin.chart.topEmpty", { days })}
    >
      <ResponsiveContainer width="100%" height={height}>
        <BarChart data={[...spenders]} layout="vertical" margin={{ top: 0, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid horizontal={false} stroke={GRID_COLOR} strokeDasharray="3 3" />
          <XAxis type="number" tick={TICK} tickLine={false} axisLine={{ stroke: GRID_COLOR }} allowDecimals={false}
            tickFormatter={(v: number) => formatNumber(v, locale)} />
          <YAxis type="category" dataKey="username" tick={TICK} tickLine={false} axisLine={false} width="auto"
            tickFormatter={short} />
          <Tooltip cursor={{ fill: "rgb(148 163 184 / 0.12)" }} contentStyle={TOOLTIP_STYLE} />
          <Bar dataKey="tokens_used" name={t("admin.chart.used")} fill={SPENDER_COLOR} radius={[0, 4, 4, 0]}
            maxBarSize={22} isAnimationActive={animate} />
        </BarChart>
      </ResponsiveContainer>
    </ChartCard>
  );
}
