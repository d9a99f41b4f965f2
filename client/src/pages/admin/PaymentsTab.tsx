import { useState } from "react";
import { PAYMENT_STATUSES, useAdminPayments } from "../../api/admin";
import type { AdminPaymentStatus } from "../../api/types";
import { inWords } from "../../components/admin/labels";
import { PaymentsTable } from "../../components/admin/PaymentsTable";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { SelectField } from "../../components/ui/SelectField";
import { useI18n } from "../../i18n/useI18n";
import { ListStates } from "../../components/admin/ListStates";

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
      <ListStates query={payments} count={rows.length} loadError={t("admin.payments.loadError")} testId="admin-payments"
        empty={status ? t("admin.payments.noneWithStatus") : t("admin.payments.empty")}>
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
      </ListStates>
    </section>
  );
}
