import type { Transaction } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { Card } from "../ui/Card";
import { dailyUsage } from "./usage";

const DAYS = 14;

/** Tokens bought vs used per day: two bars a day, drawn with plain HTML so text stays crisp. */
export function UsageChart({ items, partial }: { items: readonly Transaction[]; partial: boolean }) {
  const { t, locale } = useI18n();
  const data = dailyUsage(items, DAYS);
  const max = Math.max(1, ...data.map((d) => Math.max(d.bought, d.used)));
  const totals = data.reduce((acc, d) => ({ bought: acc.bought + d.bought, used: acc.used + d.used }), { bought: 0, used: 0 });
  const dayLabel = new Intl.DateTimeFormat(locale, { month: "numeric", day: "numeric" });
  const summary = t("history.chartSummary", { days: DAYS, bought: totals.bought, used: totals.used });

  return (
    <Card className="mb-6 p-5">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div>
          <h2 className="text-sm font-semibold text-slate-900">{t("history.chartTitle")}</h2>
          <p className="mt-0.5 text-xs text-slate-500">{summary}</p>
        </div>
        <ul className="flex gap-4 text-xs text-slate-600">
          <li className="flex items-center gap-1.5"><span className="size-2.5 rounded-sm bg-brand-500" />{t("history.chartBought")}</li>
          <li className="flex items-center gap-1.5"><span className="size-2.5 rounded-sm bg-amber-400" />{t("history.chartUsed")}</li>
        </ul>
      </div>
      <div role="img" aria-label={`${t("history.chartTitle")}. ${summary}`} className="mt-4 flex gap-2">
        <div aria-hidden="true" className="flex h-32 flex-col justify-between text-right text-[10px] tabular-nums text-slate-400">
          <span>{max}</span>
          <span>{Math.round(max / 2)}</span>
          <span>0</span>
        </div>
        <div aria-hidden="true" className="relative min-w-0 flex-1">
          <div className="absolute inset-x-0 top-0 h-32 border-y border-dashed border-slate-200">
            <div className="absolute inset-x-0 top-1/2 border-t border-dashed border-slate-100" />
          </div>
          <div className="relative flex h-32 items-end gap-0.5 sm:gap-1.5">
            {data.map((d) => (
              <div key={d.day} className="flex h-full min-w-0 flex-1 items-end justify-center gap-px sm:gap-0.5"
                title={`${dayLabel.format(d.date)} · ${t("history.chartBought")} ${d.bought} · ${t("history.chartUsed")} ${d.used}`}>
                <span className="w-1/2 max-w-3 rounded-t-sm bg-brand-500" style={{ height: `${(d.bought / max) * 100}%` }} />
                <span className="w-1/2 max-w-3 rounded-t-sm bg-amber-400" style={{ height: `${(d.used / max) * 100}%` }} />
              </div>
            ))}
          </div>
          <div className="mt-1.5 flex gap-0.5 sm:gap-1.5">
            {data.map((d, index) => (
              <span key={d.day} className={`min-w-0 flex-1 whitespace-nowrap text-center text-[10px] text-slate-400 ${index % 2 ? "invisible sm:visible" : ""}`}>
                {dayLabel.format(d.date)}
              </span>
            ))}
          </div>
        </div>
      </div>
      {partial ? <p className="mt-3 text-[11px] text-slate-400">{t("history.chartPartial")}</p> : null}
    </Card>
  );
}
