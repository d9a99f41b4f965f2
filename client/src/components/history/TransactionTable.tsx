import { Link } from "wouter";
import type { Transaction } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime, formatNumber, formatSigned } from "../../lib/format";
import { inWords } from "../admin/labels";
import { DataTable } from "../ui/DataTable";

interface TransactionTableProps {
  items: Transaction[];
  caption?: string;
  /** `data-testid` of each row. */
  rowTestId: string;
  /** Link each purchase to its payment's details (the person's own history). */
  paymentLinks?: boolean;
  /** Keep the balance column on small screens too. */
  balanceAlways?: boolean;
}

/** Ledger entries, newest first as given: date, type, signed amount, balance after. */
export function TransactionTable({ items, caption, rowTestId, paymentLinks = false, balanceAlways = false }: TransactionTableProps) {
  const { t } = useI18n();
  const balanceCell = balanceAlways ? "" : "hidden sm:table-cell ";
  return (
    <DataTable caption={caption} columns={[
      { label: t("history.col.date"), className: "hidden px-4 py-3 sm:table-cell sm:px-5" },
      { label: t("history.col.type"), className: "px-4 py-3" },
      { label: t("history.col.amount"), className: "px-4 py-3 text-right" },
      { label: t("history.col.balance"), className: `${balanceCell}px-4 py-3 text-right sm:px-5` },
    ]}>
      {items.map((item) => (
        <TransactionRow key={String(item.id)} item={item} testId={rowTestId} paymentLink={paymentLinks}
          balanceCell={balanceCell} />
      ))}
    </DataTable>
  );
}

function TransactionRow({ item, testId, paymentLink, balanceCell }: {
  item: Transaction;
  testId: string;
  paymentLink: boolean;
  balanceCell: string;
}) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const tone = item.amount > 0 ? "text-emerald-700" : item.amount < 0 ? "text-rose-700" : "text-slate-500";
  return (
    <tr className="align-top" data-testid={testId}>
      <td className="hidden whitespace-nowrap px-4 py-3 text-slate-500 sm:table-cell sm:px-5">
        <time dateTime={item.created_at}>{formatDateTime(item.created_at, locale)}</time>
      </td>
      <td className="px-4 py-3">
        <span className="font-medium text-slate-800">{inWords(i18n, "tx", item.transaction_type)}</span>
        {item.description ? <span className="block break-words text-xs text-slate-500">{item.description}</span> : null}
        <time dateTime={item.created_at} className="block text-xs text-slate-400 sm:hidden">
          {formatDateTime(item.created_at, locale)}
        </time>
        {paymentLink && item.stripe_payment_intent_id ? (
          <Link href={`/history?payment=${encodeURIComponent(item.stripe_payment_intent_id)}`}
            className="mt-0.5 inline-block text-xs font-medium text-brand-700 hover:underline">
            {t("history.viewPayment")}
          </Link>
        ) : null}
      </td>
      <td className={`whitespace-nowrap px-4 py-3 text-right font-semibold tabular-nums ${tone}`}>
        {formatSigned(item.amount)}
      </td>
      <td className={`${balanceCell}whitespace-nowrap px-4 py-3 text-right tabular-nums text-slate-600 sm:px-5`}>
        {formatNumber(item.balance_after, locale)}
      </td>
    </tr>
  );
}
