import type { DailyTotals } from "../../api/types";

export interface Totals {
  tokensSold: number;
  tokensUsed: number;
  revenueCents: number;
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}

/**
 * The server lists only days with activity (UTC dates); the charts want every day of the
 * period, so the gaps become zeros. The range ends today and starts `days - 1` days earlier,
 * or at the earliest day the server reported if that is older.
 */
export function fillDays(daily: readonly DailyTotals[], days: number, today = new Date()): DailyTotals[] {
  const end = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate());
  const byDay = new Map(daily.map((d) => [d.day, d]));
  const earliest = daily.reduce<string | null>((min, d) => (min === null || d.day < min ? d.day : min), null);
  let start = end - (days - 1) * 86_400_000;
  if (earliest !== null) start = Math.min(start, Date.parse(`${earliest}T00:00:00Z`));
  const out: DailyTotals[] = [];
  for (let t = start; t <= end; t += 86_400_000) {
    const day = isoDay(new Date(t));
    out.push(byDay.get(day) ?? { day, tokens_sold: 0, tokens_used: 0, revenue_cents: 0 });
  }
  return out;
}

export function totals(daily: readonly DailyTotals[]): Totals {
  return daily.reduce<Totals>(
    (acc, d) => ({
      tokensSold: acc.tokensSold + d.tokens_sold,
      tokensUsed: acc.tokensUsed + d.tokens_used,
      revenueCents: acc.revenueCents + d.revenue_cents,
    }),
    { tokensSold: 0, tokensUsed: 0, revenueCents: 0 },
  );
}
