import { useCallback } from "react";
import { useLocation, useSearch } from "wouter";
import { useTransactions } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { LotsCard } from "../../components/billing/LotsCard";
import { PaymentDrawer } from "../../components/history/PaymentDrawer";
import { TransactionTable } from "../../components/history/TransactionTable";
import { UsageChart } from "../../components/history/UsageChart";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
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
      <LotsCard />
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
              <TransactionTable items={items} rowTestId="transaction-row" paymentLinks />
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
