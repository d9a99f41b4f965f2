import { useCallback } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { useTransactions } from "../../api/queries";
import type { Transaction } from "../../api/types";
import { PageContainer } from "../../components/layout/AppShell";
import { PaymentDrawer } from "../../components/history/PaymentDrawer";
import { UsageChart } from "../../components/history/UsageChart";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime, formatSigned } from "../../lib/format";
import { QueryError } from "../../components/ui/QueryError";

export default function HistoryPage() {
  const i18n = useI18n();
  const { t } = i18n;
  const [, navigate] = useLocation();
  const openPayment = new URLSearchParams(useSearch()).get("payment");
  const transactions = useTransactions();
  const items = transactions.data?.pages.flatMap((page) => page.items) ?? [];
  const closeDrawer = useCallback(() => navigate("/history"), [navigate]);

  return (
    <PageContainer className="max-w-5xl">
      <PageHeader title={t("history.title")} subtitle={t("history.subtitle")} />
      {transactions.isPending ? (
        <>
          <Card className="mb-6 p-5"><Skeleton className="h-40 w-full" /></Card>
          <Card className="space-y-3 p-5" aria-busy="true">
            {[0, 1, 2, 3, 4].map((i) => <Skeleton key={i} className="h-8 w-full" />)}
          </Card>
        </>
      ) : transactions.isError ? (
        <QueryError title={t("history.loadError")} error={transactions.error} onRetry={() => void transactions.refetch()} />
      ) : (
        <>
          <UsageChart items={items} partial={transactions.hasNextPage} />
          {items.length === 0 ? (
            <Card className="flex flex-col items-center px-6 py-14 text-center">
              <span className="grid size-12 place-items-center rounded-2xl bg-slate-100 text-slate-500">
                <Icon name="history" className="size-6" />
              </span>
              <p className="mt-4 max-w-sm text-sm text-slate-600">{t("history.empty")}</p>
            </Card>
          ) : (
            <Card className="overflow-hidden">
              <table className="w-full text-left text-sm">
                <thead className="bg-slate-50 text-xs font-medium uppercase tracking-wide text-slate-500">
                  <tr>
                    <th scope="col" className="hidden px-4 py-3 sm:table-cell sm:px-5">{t("history.col.date")}</th>
                    <th scope="col" className="px-4 py-3">{t("history.col.type")}</th>
                    <th scope="col" className="px-4 py-3 text-right">{t("history.col.amount")}</th>
                    <th scope="col" className="hidden px-4 py-3 text-right sm:table-cell sm:px-5">{t("history.col.balance")}</th>
                  </tr>
                </thead>
                <tbody className="divide-y divide-slate-100">
                  {items.map((item) => <TransactionRow key={String(item.id)} item={item} />)}
                </tbody>
              </table>
            </Card>
          )}
          <div className="mt-6 flex justify-center">
            {transactions.hasNextPage ? (
              <Button variant="secondary" busy={transactions.isFetchingNextPage}
                disabled={transactions.isFetchingNextPage} onClick={() => void transactions.fetchNextPage()}>
                {transactions.isFetchingNextPage ? t("history.loadingMore") : t("history.loadMore")}
              </Button>
            ) : items.length > 0 ? (
              <p className="text-xs text-slate-400">{t("history.end")}</p>
            ) : null}
          </div>
        </>
      )}
      {openPayment ? <PaymentDrawer paymentIntentId={openPayment} onClose={closeDrawer} /> : null}
    </PageContainer>
  );
}

function TransactionRow({ item }: { item: Transaction }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const typeKey = `tx.${item.transaction_type}`;
  const label = i18n.has(typeKey) ? t(typeKey) : item.transaction_type;
  const tone = item.amount > 0 ? "text-emerald-700" : item.amount < 0 ? "text-rose-700" : "text-slate-500";
  return (
    <tr className="align-top" data-testid="transaction-row">
      <td className="hidden whitespace-nowrap px-4 py-3 text-slate-500 sm:table-cell sm:px-5">
        <time dateTime={item.created_at}>{formatDateTime(item.created_at, locale)}</time>
      </td>
      <td className="px-4 py-3">
        <span className="font-medium text-slate-800">{label}</span>
        {item.description ? <span className="block text-xs text-slate-500">{item.description}</span> : null}
        <time dateTime={item.created_at} className="block text-xs text-slate-400 sm:hidden">
          {formatDateTime(item.created_at, locale)}
        </time>
        {item.stripe_payment_intent_id ? (
          <Link href={`/history?payment=${encodeURIComponent(item.stripe_payment_intent_id)}`}
            className="mt-0.5 inline-block text-xs font-medium text-brand-700 hover:underline">
            {t("history.viewPayment")}
          </Link>
        ) : null}
      </td>
      <td className={`whitespace-nowrap px-4 py-3 text-right font-semibold tabular-nums ${tone}`}>
        {formatSigned(item.amount)}
      </td>
      <td className="hidden whitespace-nowrap px-4 py-3 text-right tabular-nums text-slate-600 sm:table-cell sm:px-5">
        {item.balance_after}
      </td>
    </tr>
  );
}
