import type { Transaction } from "../../api/types";

export interface DayUsage {
  /** Local calendar day, YYYY-MM-DD. */
  day: string;
  date: Date;
  bought: number;
  used: number;
}

function dayKey(date: Date): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

/**
 * Tokens bought (purchases) and used (AI replies, less tokens refunded for
 * them) per local day, for the `days` days ending `today`.
 */
export function dailyUsage(items: readonly Transaction[], days: number, today = new Date()): DayUsage[] {
  const out: DayUsage[] = [];
  const index = new Map<string, DayUsage>();
  for (let offset = days - 1; offset >= 0; offset -= 1) {
    const date = new Date(today.getFullYear(), today.getMonth(), today.getDate() - offset);
    const entry = { day: dayKey(date), date, bought: 0, used: 0 };
    out.push(entry);
    index.set(entry.day, entry);
  }
  for (const item of items) {
    const created = new Date(item.created_at);
    if (Number.isNaN(created.getTime())) continue;
    const entry = index.get(dayKey(created));
    if (!entry) continue;
    if (item.transaction_type === "purchase") entry.bought += item.amount;
    else if (item.transaction_type === "deduction") entry.used += -item.amount;
    else if (item.transaction_type === "refund") entry.used -= item.amount;
  }
  for (const entry of out) entry.used = Math.max(0, entry.used);
  return out;
}
