import { useEffect, useRef } from "react";
import { usePayment } from "../../api/queries";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime, formatMoney } from "../../lib/format";
import { errorText } from "../../lib/errorText";
import { tierName } from "../payment/tiers";
import { Icon } from "../ui/Icon";
import { Skeleton } from "../ui/Skeleton";

/** One payment's details in a side panel; Escape or the backdrop closes it. */
export function PaymentDrawer({ paymentIntentId, onClose }: { paymentIntentId: string; onClose: () => void }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const payment = usePayment(paymentIntentId);
  const closeRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    const onKey = (event: KeyboardEvent) => {
      if (event.key === "Escape") onClose();
    };
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("keydown", onKey);
      previous?.focus?.();
    };
  }, [onClose]);

  const statusKey = payment.data ? `paymentStatus.${payment.data.status}` : "";
  const rows: [string, string][] = payment.data
    ? [
        [t("paymentDetail.status"), i18n.has(statusKey) ? t(statusKey) : payment.data.status],
        [t("paymentDetail.pack"), tierName(i18n, payment.data.tier)],
        [t("paymentDetail.tokens"), String(payment.data.tokens)],
        [t("paymentDetail.amount"), formatMoney(payment.data.amount, payment.data.currency, locale)],
        [t("paymentDetail.created"), formatDateTime(payment.data.created_at, locale)],
        [t("paymentDetail.id"), payment.data.payment_intent_id ?? paymentIntentId],
      ]
    : [];

  return (
    <div className="fixed inset-0 z-40 flex justify-end">
      <div className="absolute inset-0 bg-slate-900/30 animate-fade-in" onClick={onClose} aria-hidden="true" />
      <div role="dialog" aria-modal="true" aria-labelledby="payment-drawer-title"
        className="relative flex h-full w-full max-w-sm animate-fade-in flex-col bg-white shadow-xl">
        <div className="flex items-center justify-between border-b border-slate-200 px-5 py-4">
          <h2 id="payment-drawer-title" className="font-semibold text-slate-900">{t("paymentDetail.title")}</h2>
          <button ref={closeRef} type="button" onClick={onClose} aria-label={t("common.close")}
            className="grid size-8 place-items-center rounded-lg text-slate-500 hover:bg-slate-100">
            <Icon name="x" className="size-5" />
          </button>
        </div>
        <div className="flex-1 overflow-y-auto px-5 py-4">
          {payment.isPending ? (
            <div className="space-y-3" aria-busy="true">
              {[0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-6 w-full" />)}
            </div>
          ) : payment.isError ? (
            <p className="text-sm text-rose-700">{errorText(i18n, payment.error)}</p>
          ) : (
            <>
              <p className={`mb-4 inline-flex items-center gap-1.5 rounded-full px-2.5 py-1 text-xs font-semibold ${payment.data.tokens_credited ? "bg-emerald-50 text-emerald-700" : "bg-amber-50 text-amber-800"}`}>
                <Icon name={payment.data.tokens_credited ? "check" : "info"} className="size-3.5" />
                {payment.data.tokens_credited ? t("paymentDetail.credited") : t("paymentDetail.notCredited")}
              </p>
              <dl className="divide-y divide-slate-100 text-sm">
                {rows.map(([label, value]) => (
                  <div key={label} className="flex justify-between gap-4 py-2.5">
                    <dt className="text-slate-500">{label}</dt>
                    <dd className="min-w-0 break-all text-right font-medium text-slate-800">{value}</dd>
                  </div>
                ))}
              </dl>
            </>
          )}
        </div>
      </div>
    </div>
  );
}
