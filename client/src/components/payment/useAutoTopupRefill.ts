import { useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { useAutoTopup, type AutoTopup } from "../../api/billing";
import { queryKeys, useTokenBalance } from "../../api/queries";

/** How often the balance is asked for while an automatic top-up is on its way. */
export const TOPUP_POLL_MS = 3_000;
/** How long after the balance fell below the threshold the page keeps asking. */
export const TOPUP_WATCH_MS = 90_000;

/** Auto top-up is on and the available balance is below its threshold: a top-up is due. */
export function topupDue(topup: AutoTopup | undefined, available: number | undefined): boolean {
  return topup !== undefined && available !== undefined && topup.enabled && topup.state === "active"
    && available < topup.threshold;
}

/**
 * An automatic top-up is charged off the page and credited by Stripe's webhook, so no
 * request of this page brings the new balance back. While one is due, ask for the balance
 * every few seconds (for a while at most), so the refill shows without a reload.
 */
export function useAutoTopupRefill(): void {
  const queryClient = useQueryClient();
  const balance = useTokenBalance();
  const topup = useAutoTopup();
  const due = topupDue(topup.data, balance.data?.available);

  useEffect(() => {
    if (!due) return undefined;
    const started = Date.now();
    const timer = window.setInterval(() => {
      if (Date.now() - started > TOPUP_WATCH_MS) {
        window.clearInterval(timer);
        return;
      }
      void queryClient.invalidateQueries({ queryKey: queryKeys.tokenBalance });
    }, TOPUP_POLL_MS);
    return () => window.clearInterval(timer);
  }, [due, queryClient]);
}
