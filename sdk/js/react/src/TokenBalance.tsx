import { balancePill } from "../../../../client/src/components/payment/TokenBalance";
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
  const pill = balancePill({
    available: balance?.available ?? null,
    pending: balance === null && !balanceError,
    failed: balanceError && balance === null,
    lowBelow: lowBalance,
    showTitle,
    compact,
  });
  return (
    <button type="button" onClick={onClick} title={t("balance.buyMore")} className={`tb-widget ${pill.className}`}>
      {pill.children}
    </button>
  );
}
