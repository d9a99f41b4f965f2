import { useAdminLots, useAdminSubscription } from "../../api/billing";
import { useI18n } from "../../i18n/useI18n";
import { SubscriptionStatusBadge } from "../billing/SubscriptionStatusBadge";
import { LotTable } from "../billing/LotTable";
import { formatPeriodEnd, planName } from "../billing/plans";
import { Card } from "../ui/Card";
import { QueryError } from "../ui/QueryError";
import { Skeleton } from "../ui/Skeleton";

/** Admin: one user's subscription state. */
export function AdminSubscriptionCard({ userId }: { userId: number }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const query = useAdminSubscription(userId);
  const sub = query.data?.subscription ?? null;
  return (
    <Card className="p-4 sm:p-5" data-testid="admin-user-subscription">
      <h3 className="text-sm font-semibold text-slate-900">{t("admin.user.subscription")}</h3>
      {query.isPending ? (
        <Skeleton className="mt-3 h-10 w-full" />
      ) : query.isError ? (
        <QueryError className="mt-3" error={query.error} onRetry={() => void query.refetch()} />
      ) : !sub ? (
        <p className="mt-2 text-sm text-slate-500">{t("admin.user.noSubscription")}</p>
      ) : (
        <div className="mt-2 space-y-1.5 text-sm">
          <p className="flex flex-wrap items-center gap-2">
            <span className="font-medium text-slate-900">{planName(i18n, sub.plan)}</span>
            <SubscriptionStatusBadge subscription={sub} />
          </p>
          <p className="text-slate-600">{t("admin.user.periodEnd", { date: formatPeriodEnd(sub, locale) })}</p>
          {sub.scheduled_plan ? (
            <p className="text-slate-600">
              {t("subscription.switchesTo", { plan: planName(i18n, sub.scheduled_plan), date: formatPeriodEnd(sub, locale) })}
            </p>
          ) : null}
          <p className="break-all font-mono text-xs text-slate-400">{sub.id}</p>
        </div>
      )}
    </Card>
  );
}

/** Admin: one user's token lots (all of them, spent and expired included). */
export function AdminLotsCard({ userId }: { userId: number }) {
  const { t } = useI18n();
  const query = useAdminLots(userId);
  return (
    <Card className="overflow-hidden" data-testid="admin-user-lots">
      <h3 className="px-4 pt-4 text-sm font-semibold text-slate-900 sm:px-5">{t("admin.user.lots")}</h3>
      {query.isPending ? (
        <div className="p-5"><Skeleton className="h-16 w-full" /></div>
      ) : query.isError ? (
        <QueryError className="m-4" error={query.error} onRetry={() => void query.refetch()} />
      ) : query.data.items.length === 0 ? (
        <p className="px-5 py-8 text-center text-sm text-slate-500">{t("lots.empty")}</p>
      ) : (
        <div className="mt-3 overflow-x-auto">
          <LotTable lots={query.data.items} caption={t("admin.user.lots")} rowTestId="admin-lot-row" />
        </div>
      )}
    </Card>
  );
}
