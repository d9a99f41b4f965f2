import { useState } from "react";
import { PAYMENT_STATUSES, useAdminPayments } from "../../api/admin";
import type { AdminPaymentStatus } from "../../api/types";
import { inWords } from "../../components/admin/labels";
import { PaymentsTable } from "../../components/admin/PaymentsTable";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { SelectField } from "../../components/ui/SelectField";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { QueryError } from "../../components/ui/QueryError";

const ALL = "all";

export function PaymentsTab() {
  const i18n = useI18n();
  const { t } = i18n;
  const [status, setStatus] = useState<AdminPaymentStatus | null>(null);
  const payments = useAdminPayments(status);
  const rows = payments.data?.pages.flat() ?? [];
  const options = [
    { value: ALL, label: t("admin.filter.all") },
    ...PAYMENT_STATUSES.map((s) => ({ value: s, label: inWords(i18n, "paymentStatus", s) })),
  ];
  const pick = (value: string) => {
    setStatus(PAYMENT_STATUSES.find((s) => s === value) ?? null);
  };

  return (
    <section aria-labelledby="admin-payments-title">
      <h2 id="admin-payments-title" className="sr-only">{t("admin.tab.payments")}</h2>
      <div className="mb-4 flex flex-wrap items-end justify-between gap-3">
        <SelectField label={t("admin.payments.filter")} options={options} value={status ?? ALL}
          onChange={(event) => pick(event.target.value)} className="w-full sm:w-64" data-testid="admin-payments-filter" />
        {payments.isFetching && !payments.isPending ? <p className="text-xs text-slate-500">{t("common.loading")}</p> : null}
      </div>
      {payments.isPending ? (
        <Card className="space-y-3 p-5" aria-busy="true">
          {[0, 1, 2, 3].map((i) => <Skeleton key={i} className="h-8 w-full" />)}
        </Card>
      ) : payments.isError ? (
        <QueryError title={t("admin.payments.loadError")} error={payments.error} onRetry={() => void payments.refetch()} />
      ) : rows.length === 0 ? (
        <Card className="px-6 py-12 text-center text-sm text-slate-600" data-testid="admin-payments">
          {status ? t("admin.payments.noneWithStatus") : t("admin.payments.empty")}
        </Card>
      ) : (
        <>
          <Card className="overflow-hidden">
            <PaymentsTable payments={rows} showUser testId="admin-payments" />
          </Card>
          <div className="mt-4 flex justify-center">
            {payments.hasNextPage ? (
              <Button variant="secondary" busy={payments.isFetchingNextPage} disabled={payments.isFetchingNextPage}
                onClick={() => void payments.fetchNextPage()}>
                {payments.isFetchingNextPage ? t("history.loadingMore") : t("history.loadMore")}
              </Button>
            ) : (
              <p className="text-xs text-slate-400">{t("history.end")}</p>
            )}
          </div>
        </>
      )}
    </section>
  );
}
