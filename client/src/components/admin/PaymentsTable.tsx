import type { ReactNode } from "react";
import { Link } from "wouter";
import type { AdminPayment } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime, formatMoney, formatNumber } from "../../lib/format";
import { tierName } from "../payment/tiers";
import { DataTable } from "../ui/DataTable";
import { Icon } from "../ui/Icon";
import { DisputeBadge, PaymentStatusBadge, inWords } from "./labels";

/**
 * Payments, newest first. Narrow places (a phone, or the side of a user's page) see the
 * essentials with the rest stacked under the pack; wide ones get a column for each fact.
 * The breakpoints follow the table's own width (container queries), not the window's.
 */
export function PaymentsTable({ payments, showUser, testId }: {
  payments: readonly AdminPayment[];
  showUser: boolean;
  testId?: string;
}) {
  const { t } = useI18n();
  return (
    <div className="@container overflow-x-auto" data-testid={testId}>
      <DataTable caption={t("admin.payments.caption")} columns={[
        { label: t("admin.payments.col.payment"), className: "px-4 py-3" },
        { label: t("admin.payments.col.amount"), className: "hidden px-4 py-3 text-right @md:table-cell" },
        { label: t("admin.payments.col.status"), className: "px-4 py-3" },
        { label: t("admin.payments.col.tokens"), className: "hidden px-4 py-3 text-right @md:table-cell" },
        { label: t("admin.payments.col.refunds"), className: "hidden px-4 py-3 @3xl:table-cell" },
        { label: t("admin.payments.col.stripe"), className: "hidden px-4 py-3 @3xl:table-cell" },
      ]}>
        {payments.map((payment) => <PaymentRow key={payment.id} payment={payment} showUser={showUser} />)}
      </DataTable>
    </div>
  );
}

/** Refunds, tokens taken back and disputes; `quiet` says nothing when there are none. */
function Refunds({ payment, quiet = false }: { payment: AdminPayment; quiet?: boolean }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const parts: ReactNode[] = [];
  if (payment.amount_refunded_cents > 0) {
    parts.push(
      <span key="refund" className="block text-xs text-rose-700">
        {t("admin.payments.refunded", { amount: formatMoney(payment.amount_refunded_cents, payment.currency, locale) })}
      </span>,
    );
  }
  if (payment.reversed_tokens > 0) {
    parts.push(
      <span key="reversed" className="block text-xs text-rose-700">
        {t("admin.payments.reversed", { n: formatNumber(payment.reversed_tokens, locale) })}
      </span>,
    );
  }
  if (payment.dispute_status) {
    parts.push(
      <span key="dispute" className="mt-0.5 flex flex-wrap items-center gap-1 text-xs text-slate-500">
        {t("admin.payments.dispute")} <DisputeBadge i18n={i18n} status={payment.dispute_status} />
      </span>,
    );
  }
  if (parts.length) return <>{parts}</>;
  return quiet ? null : <span className="text-xs text-slate-400">{t("admin.payments.none")}</span>;
}

function StripeLink({ payment }: { payment: AdminPayment }) {
  const { t } = useI18n();
  if (payment.stripe_dashboard_url) {
    return (
      <a href={payment.stripe_dashboard_url} target="_blank" rel="noopener noreferrer"
        className="inline-flex items-center gap-1 text-xs font-medium text-brand-700 hover:underline">
        {t("admin.payments.openInStripe")}
        <Icon name="external" className="size-3.5" />
        <span className="sr-only">{t("admin.payments.newTab")}</span>
      </a>
    );
  }
  return payment.stripe_payment_intent_id ? (
    <span className="block break-all font-mono text-[11px] text-slate-500">{payment.stripe_payment_intent_id}</span>
  ) : null;
}

function PaymentRow({ payment, showUser }: { payment: AdminPayment; showUser: boolean }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const amount = formatMoney(payment.amount_cents, payment.currency, locale);
  const credited = payment.tokens_credited > 0;
  return (
    <tr className="align-top" data-testid="admin-payment-row">
      <td className="px-4 py-3">
        <span className="font-medium text-slate-800">
          {tierName(i18n, payment.tier)} · {t("payment.tokens", { n: formatNumber(payment.tokens, locale) })}
        </span>
        {showUser ? (
          <Link href={`/admin/users/${payment.user_id}`} className="block text-xs font-medium text-brand-700 hover:underline">
            {payment.username}
          </Link>
        ) : null}
        <time dateTime={payment.created_at} className="block text-xs text-slate-500">
          {formatDateTime(payment.created_at, locale)}
        </time>
        <div className="mt-1 space-y-0.5 @3xl:hidden">
          <Refunds payment={payment} quiet />
          <StripeLink payment={payment} />
        </div>
      </td>
      <td className="hidden whitespace-nowrap px-4 py-3 text-right tabular-nums text-slate-800 @md:table-cell">{amount}</td>
      <td className="px-4 py-3">
        <PaymentStatusBadge i18n={i18n} status={payment.status} />
        <span className="mt-1 block whitespace-nowrap text-xs tabular-nums text-slate-600 @md:hidden">{amount}</span>
        {payment.last_error_code ? (
          <span className="mt-1 block text-xs text-rose-700" title={payment.last_error_code}>
            {inWords(i18n, "decline", payment.last_error_code)}
          </span>
        ) : null}
      </td>
      <td className="hidden whitespace-nowrap px-4 py-3 text-right @md:table-cell">
        <span className={`block font-semibold tabular-nums ${credited ? "text-emerald-700" : "text-slate-400"}`}>
          {credited ? `+${formatNumber(payment.tokens_credited, locale)}` : "0"}
        </span>
        <span className="block text-xs text-slate-500">
          {credited ? t("admin.payments.credited") : t("admin.payments.notCredited")}
        </span>
      </td>
      <td className="hidden px-4 py-3 @3xl:table-cell"><Refunds payment={payment} /></td>
      <td className="hidden max-w-[12rem] px-4 py-3 @3xl:table-cell"><StripeLink payment={payment} /></td>
    </tr>
  );
}
