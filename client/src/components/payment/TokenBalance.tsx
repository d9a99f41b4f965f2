import type { ReactNode } from "react";
import { Link } from "wouter";
import { expiringLots, useLots } from "../../api/billing";
import { LOW_BALANCE_TOKENS, useTokenBalance } from "../../api/queries";
import { formatDate } from "../../lib/format";
import { useI18n } from "../../i18n/useI18n";
import { Icon } from "../ui/Icon";
import { Skeleton } from "../ui/Skeleton";

export interface TokenBalanceProps {
  /** Show the "Token balance" caption above the number. */
  showTitle?: boolean;
  /** Number only (plus a dot when low), for tight spaces such as a phone header. */
  compact?: boolean;
  /** More inside the pill after the number (the app shows replies left there). */
  children?: ReactNode;
}

/**
 * The available balance, always linking to the payment page. The element with
 * data-testid="token-balance" holds the number and nothing else.
 */
export function TokenBalance({ showTitle = false, compact = false, children }: TokenBalanceProps) {
  const { t, plural, locale } = useI18n();
  const { data, isPending, isError } = useTokenBalance();
  const lots = useLots();
  // Active lots expiring within a week: a hint, so the tokens get used (or are not a surprise).
  const expiring = lots.data ? expiringLots(lots.data.items) : [];
  const expiringTokens = expiring.reduce((sum, lot) => sum + lot.remaining, 0);
  const soonest = expiring[0]?.expires_at;
  const pill = balancePill({
    expiringSoon: expiringTokens > 0 && soonest
      ? { tokens: expiringTokens, detail: plural("lots.expireOn", expiringTokens, { date: formatDate(soonest, locale) }) }
      : null,
    available: data?.available ?? null,
    pending: isPending,
    failed: isError,
    lowBelow: LOW_BALANCE_TOKENS,
    showTitle,
    compact,
  });
  return (
    <Link href="/payment" title={t("balance.buyMore")} className={pill.className}>
      {pill.children}
      {data ? children : null}
    </Link>
  );
}

export interface BalancePillState extends TokenBalanceProps {
  /** The available balance; null while loading or when it could not be read. */
  available: number | null;
  pending: boolean;
  failed: boolean;
  /** A balance below this shows as low. */
  lowBelow: number;
  /** Tokens in lots that expire within a week, and a sentence saying when. */
  expiringSoon?: { tokens: number; detail: string } | null;
}

/**
 * The balance pill's look and contents, for whatever element wraps it (a link here, a
 * button in the embeddable widget), so both show a balance the same way.
 */
export function balancePill(state: BalancePillState): { className: string; children: ReactNode } {
  const { available, lowBelow, compact = false } = state;
  const low = available !== null && available < lowBelow;
  return {
    className: [
      "group inline-flex items-center gap-2 rounded-full py-1.5 text-sm ring-1 ring-inset transition-colors",
      compact ? "px-2.5" : "px-3",
      low
        ? "bg-amber-50 text-amber-900 ring-amber-300 hover:bg-amber-100"
        : "bg-brand-50 text-brand-900 ring-brand-200 hover:bg-brand-100",
    ].join(" "),
    children: <BalancePillContents {...state} low={low} />,
  };
}

function BalancePillContents({
  available,
  pending,
  failed,
  low,
  showTitle = false,
  compact = false,
  expiringSoon = null,
}: BalancePillState & { low: boolean }) {
  const { t, plural } = useI18n();
  return (
    <>
      <Icon name="coin" className={`size-4 shrink-0 ${low ? "text-amber-600" : "text-brand-600"}`} />
      <span className="flex flex-col text-left leading-tight">
        {showTitle ? (
          <span className="text-[11px] font-medium uppercase tracking-wide opacity-70">
            {t("balance.title")}
          </span>
        ) : null}
        <span className="flex items-baseline gap-1">
          {pending ? (
            <span role="status" aria-live="polite" className="inline-flex items-center">
              <Skeleton className="h-4 w-8" />
              <span className="sr-only">{t("common.loading")}</span>
            </span>
          ) : failed || available === null ? (
            <span title={t("balance.unavailable")} aria-label={t("balance.unavailable")}>
              —
            </span>
          ) : (
            <span data-testid="token-balance" className="font-semibold tabular-nums">
              {available}
            </span>
          )}
          <span className={compact ? "sr-only" : "text-xs opacity-80"}>{t("balance.unit")}</span>
        </span>
      </span>
      {expiringSoon && !pending && !failed ? (
        <span data-testid="expiring-soon" title={expiringSoon.detail}
          className="inline-flex items-center gap-1 text-xs font-medium text-amber-800">
          <Icon name="clock" className="size-3.5 shrink-0" />
          <span className={compact ? "sr-only" : ""}>{plural("balance.expiringSoon", expiringSoon.tokens)}</span>
          <span className="sr-only">{expiringSoon.detail}</span>
        </span>
      ) : null}
      {low ? (
        compact ? (
          <span className="flex items-center" data-low-balance="true">
            <span aria-hidden="true" className="size-2 rounded-full bg-amber-500" />
            <span className="sr-only">{t("balance.lowShort")}</span>
          </span>
        ) : (
          <span data-low-balance="true" className="text-xs font-medium text-amber-800 group-hover:underline">
            {t("balance.low")}
          </span>
        )
      ) : null}
    </>
  );
}
