import { Link } from "wouter";
import { useAdminUser } from "../../api/admin";
import type { AdminUserDetail } from "../../api/types";
import { GrantForm } from "../../components/admin/GrantForm";
import { PaymentsTable } from "../../components/admin/PaymentsTable";
import { AdminLotsCard, AdminSubscriptionCard } from "../../components/admin/UserBilling";
import { TransactionTable } from "../../components/history/TransactionTable";
import { Alert } from "../../components/ui/Alert";
import { Badge } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { formatDateTime, formatNumber } from "../../lib/format";
import { QueryError } from "../../components/ui/QueryError";

function BackLink() {
  const { t } = useI18n();
  return (
    <Link href="/admin/users" className="mb-4 inline-flex items-center gap-1.5 rounded-md text-sm font-medium text-slate-600 hover:text-slate-900">
      <Icon name="arrowLeft" className="size-4" />
      {t("admin.user.back")}
    </Link>
  );
}

/** /admin/users/:id — one person's account, ledger, payments and corrections. */
export function UserPage({ rawId }: { rawId: string }) {
  const { t } = useI18n();
  const userId = /^\d+$/.test(rawId) ? Number(rawId) : null;
  if (userId === null) {
    return (
      <>
        <BackLink />
        <Alert tone="warning">{t("errors.user_not_found")}</Alert>
      </>
    );
  }
  return <UserDetail userId={userId} />;
}

function UserDetail({ userId }: { userId: number }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const detail = useAdminUser(userId);
  const first = detail.data?.pages[0];

  if (detail.isPending) {
    return (
      <div aria-busy="true">
        <BackLink />
        <Skeleton className="mb-6 h-10 w-64" />
        <div className="grid gap-4 lg:grid-cols-3">
          <Card className="p-5 lg:col-span-2"><Skeleton className="h-64 w-full" /></Card>
          <Card className="p-5"><Skeleton className="h-64 w-full" /></Card>
        </div>
      </div>
    );
  }
  if (detail.isError || !first) {
    return (
      <>
        <BackLink />
        <QueryError title={t("admin.user.loadError")} error={detail.error} onRetry={() => void detail.refetch()} />
      </>
    );
  }

  const { user, balance, payments } = first;
  const transactions = detail.data.pages.flatMap((page) => page.transactions);
  return (
    <section aria-labelledby="admin-user-title" data-testid="admin-user">
      <BackLink />
      <div className="mb-6 flex flex-wrap items-end justify-between gap-3">
        <div className="min-w-0">
          <div className="flex flex-wrap items-center gap-2">
            <h2 id="admin-user-title" className="truncate text-xl font-semibold text-slate-900">{user.username}</h2>
            {user.is_admin ? <Badge tone="brand">{t("admin.users.adminBadge")}</Badge> : null}
          </div>
          <p className="mt-0.5 break-words text-sm text-slate-500">
            {user.email} · {t("admin.user.joined", { date: formatDateTime(user.created_at, locale) })} · #{user.id}
          </p>
        </div>
      </div>

      <div className="grid gap-4 sm:gap-6 lg:grid-cols-3">
        <div className="min-w-0 space-y-4 sm:space-y-6 lg:col-start-3 lg:row-start-1">
          <BalanceCard balance={balance} spent={user.spent} />
          <AdminSubscriptionCard userId={user.id} />
          <GrantForm userId={user.id} username={user.username} available={balance.available} />
        </div>

        <div className="min-w-0 space-y-4 sm:space-y-6 lg:col-span-2 lg:col-start-1 lg:row-start-1">
          <Card className="overflow-hidden">
            <h3 className="px-4 pt-4 text-sm font-semibold text-slate-900 sm:px-5">{t("admin.user.ledger")}</h3>
            {transactions.length === 0 ? (
              <p className="px-5 py-8 text-center text-sm text-slate-500">{t("admin.user.noTransactions")}</p>
            ) : (
              <div className="mt-3 overflow-x-auto" data-testid="admin-ledger">
                <TransactionTable items={transactions} caption={t("admin.user.ledger")} rowTestId="admin-ledger-row" balanceAlways />
              </div>
            )}
            <div className="flex justify-center border-t border-slate-100 px-4 py-3">
              {detail.hasNextPage ? (
                <Button variant="secondary" size="sm" busy={detail.isFetchingNextPage} disabled={detail.isFetchingNextPage}
                  onClick={() => void detail.fetchNextPage()}>
                  {detail.isFetchingNextPage ? t("history.loadingMore") : t("history.loadMore")}
                </Button>
              ) : transactions.length > 0 ? (
                <p className="text-xs text-slate-400">{t("history.end")}</p>
              ) : null}
            </div>
          </Card>

          <Card className="overflow-hidden">
            <h3 className="px-4 pt-4 text-sm font-semibold text-slate-900 sm:px-5">{t("admin.user.payments")}</h3>
            {payments.length === 0 ? (
              <p className="px-5 py-8 text-center text-sm text-slate-500">{t("admin.user.noPayments")}</p>
            ) : (
              <div className="mt-3">
                <PaymentsTable payments={payments} showUser={false} testId="admin-user-payments" />
              </div>
            )}
          </Card>

          <AdminLotsCard userId={user.id} />
        </div>
      </div>
    </section>
  );
}

function BalanceCard({ balance, spent }: { balance: AdminUserDetail["balance"]; spent: number }) {
  const { t, locale } = useI18n();
  const cells: [string, number, string][] = [
    [t("admin.user.available"), balance.available, "admin-user-available"],
    [t("admin.user.balance"), balance.balance, "admin-user-balance"],
    [t("admin.user.reserved"), balance.reserved, "admin-user-reserved"],
    [t("admin.user.spent"), spent, "admin-user-spent"],
  ];
  return (
    <Card className="p-4 sm:p-5">
      <h3 className="text-sm font-semibold text-slate-900">{t("admin.user.balanceTitle")}</h3>
      <dl className="mt-3 grid grid-cols-2 gap-3">
        {cells.map(([label, value, testId], index) => (
          <div key={testId} className={`rounded-xl px-3 py-2.5 ${index === 0 ? "bg-brand-50 ring-1 ring-inset ring-brand-200" : "bg-slate-50"}`}>
            <dt className="text-xs text-slate-500">{label}</dt>
            <dd className={`mt-0.5 text-xl font-semibold tabular-nums ${index === 0 ? "text-brand-800" : "text-slate-900"}`} data-testid={testId}>
              {formatNumber(value, locale)}
            </dd>
          </div>
        ))}
      </dl>
    </Card>
  );
}

