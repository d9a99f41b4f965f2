import { isActiveLot, type Lot } from "../../api/billing";
import type { I18n } from "../../i18n/I18nProvider";
import { useI18n } from "../../i18n/useI18n";
import { formatDate, formatNumber } from "../../lib/format";
import { Badge, type BadgeTone } from "../ui/Badge";
import { DataTable } from "../ui/DataTable";

/** When a lot's tokens expire, in words: "120 tokens expire on Feb 1", "Never expires", … */
export function lotExpiryText(i18n: Pick<I18n, "t" | "plural" | "locale">, lot: Lot, now: number = Date.now()): string {
  const { t, plural, locale } = i18n;
  const today = new Date(now);
  if (lot.expires_at !== null && Date.parse(lot.expires_at) <= now) {
    return t("lots.expired", { date: formatDate(lot.expires_at, locale, today) });
  }
  if (lot.remaining <= 0) return t("lots.usedUp");
  if (lot.expires_at === null) return t("lots.never");
  return plural("lots.expireOn", lot.remaining, { date: formatDate(lot.expires_at, locale, today) });
}

export function lotSourceLabel(i18n: Pick<I18n, "t" | "has">, source: string): string {
  const key = `lotSource.${source}`;
  return i18n.has(key) ? i18n.t(key) : source;
}

const sourceTones: Record<string, BadgeTone> = {
  purchase: "brand",
  allotment: "info",
  grant: "success",
  adjustment: "neutral",
  reinstatement: "neutral",
};

interface LotTableProps {
  lots: readonly Lot[];
  caption: string;
  rowTestId?: string;
}

/** Token lots as given (newest first): where they came from, what is left and when it expires. */
export function LotTable({ lots, caption, rowTestId = "lot-row" }: LotTableProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const now = Date.now();
  return (
    <DataTable caption={caption} columns={[
      { label: t("lots.col.source"), className: "px-4 py-3 sm:px-5" },
      { label: t("lots.col.remaining"), className: "px-4 py-3 text-right" },
      { label: t("lots.col.expiry"), className: "px-4 py-3" },
      { label: t("lots.col.added"), className: "hidden px-4 py-3 sm:table-cell sm:px-5" },
    ]}>
      {lots.map((lot) => {
        const active = isActiveLot(lot, now);
        return (
          <tr key={lot.id} data-testid={rowTestId} className={active ? "" : "text-slate-400"}>
            <td className="px-4 py-3 sm:px-5">
              <Badge tone={active ? (sourceTones[lot.source] ?? "neutral") : "neutral"}>
                {lotSourceLabel(i18n, lot.source)}
              </Badge>
            </td>
            <td className="px-4 py-3 text-right tabular-nums">
              {t("lots.ofAmount", { remaining: formatNumber(lot.remaining, locale), amount: formatNumber(lot.amount, locale) })}
            </td>
            <td className="px-4 py-3" data-testid="lot-expiry">{lotExpiryText(i18n, lot, now)}</td>
            <td className="hidden px-4 py-3 text-slate-500 sm:table-cell sm:px-5">{formatDate(lot.created_at, locale)}</td>
          </tr>
        );
      })}
    </DataTable>
  );
}
