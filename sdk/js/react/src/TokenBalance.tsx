import { Icon } from "../../../../client/src/components/ui/Icon";
import { Skeleton } from "../../../../client/src/components/ui/Skeleton";
import { useI18n } from "../../../../client/src/i18n/useI18n";
import { useTokenbank } from "./context";

export interface TokenBalanceProps {
  /** Show the "Token balance" caption above the number. */
  showTitle?: boolean;
  /** Number only (plus a dot when low), for tight spaces such as a phone header. */
  compact?: boolean;
  /** Called when the pill is clicked (e.g. to open <BuyTokens/>). */
  onClick?: () => void;
}

/**
 * The customer's available balance, as tokenbank's own header shows it (the web client's
 * TokenBalance, fed by the widget endpoint). The element with data-testid="token-balance"
 * holds the number and nothing else.
 */
export function TokenBalance({ showTitle = false, compact = false, onClick }: TokenBalanceProps) {
  const { t } = useI18n();
  const { balance, balanceError, lowBalance } = useTokenbank();
  const low = balance !== null && balance.available < lowBalance;

  return (
    <button
      type="button"
      onClick={onClick}
      title={t("balance.buyMore")}
      className={[
        "tb-widget group inline-flex items-center gap-2 rounded-full py-1.5 text-sm ring-1 ring-inset transition-colors",
        compact ? "px-2.5" : "px-3",
        low
          ? "bg-amber-50 text-amber-900 ring-amber-300 hover:bg-amber-100"
          : "bg-brand-50 text-brand-900 ring-brand-200 hover:bg-brand-100",
      ].join(" ")}
    >
      <Icon name="coin" className={`size-4 shrink-0 ${low ? "text-amber-600" : "text-brand-600"}`} />
      <span className="flex flex-col leading-tight text-left">
        {showTitle ? (
          <span className="text-[11px] font-medium uppercase tracking-wide opacity-70">{t("balance.title")}</span>
        ) : null}
        <span className="flex items-baseline gap-1">
          {balance === null && !balanceError ? (
            <span role="status" aria-live="polite" className="inline-flex items-center">
              <Skeleton className="h-4 w-8" />
              <span className="sr-only">{t("common.loading")}</span>
            </span>
          ) : balance === null ? (
            <span title={t("balance.unavailable")} aria-label={t("balance.unavailable")}>—</span>
          ) : (
            <span data-testid="token-balance" className="font-semibold tabular-nums">
              {balance.available}
            </span>
          )}
          <span className={compact ? "sr-only" : "text-xs opacity-80"}>{t("balance.unit")}</span>
        </span>
      </span>
      {low ? (
        <span data-low-balance="true" className={compact ? "sr-only" : "text-xs font-medium text-amber-800"}>
          {compact ? t("balance.lowShort") : t("balance.low")}
        </span>
      ) : null}
    </button>
  );
}
