import { useState } from "react";
import { isActiveLot, useLots } from "../../api/billing";
import { useI18n } from "../../i18n/useI18n";
import { Card } from "../ui/Card";
import { QueryError } from "../ui/QueryError";
import { Skeleton } from "../ui/Skeleton";
import { LotTable } from "./LotTable";

/** The person's token lots and when each expires; spent and expired ones on request. */
export function LotsCard() {
  const { t } = useI18n();
  const lots = useLots();
  const [showAll, setShowAll] = useState(false);

  if (lots.isPending) {
    return <Card className="mb-6 p-5" aria-busy="true"><Skeleton className="h-24 w-full" /></Card>;
  }
  if (lots.isError) {
    return (
      <QueryError className="mb-6" title={t("lots.loadError")} error={lots.error} onRetry={() => void lots.refetch()} />
    );
  }
  const all = lots.data.items;
  if (all.length === 0) return null;
  const active = all.filter((lot) => isActiveLot(lot));
  const shown = showAll ? all : active;
  return (
    <Card className="mb-6 overflow-hidden" data-testid="lots-card">
      <div className="px-4 pt-4 sm:px-5">
        <h2 className="text-sm font-semibold text-slate-900">{t("lots.title")}</h2>
        <p className="mt-0.5 text-xs text-slate-500">{t("lots.subtitle")}</p>
      </div>
      <div className="mt-3 overflow-x-auto">
        {shown.length === 0 ? (
          <p className="px-5 py-6 text-center text-sm text-slate-500">{t("lots.empty")}</p>
        ) : (
          <LotTable lots={shown} caption={t("lots.title")} />
        )}
      </div>
      {active.length !== all.length ? (
        <div className="border-t border-slate-100 px-4 py-2.5 text-center sm:px-5">
          <button type="button" className="text-sm font-medium text-brand-700 hover:underline"
            onClick={() => setShowAll((v) => !v)}>
            {t(showAll ? "lots.showActive" : "lots.showAll")}
          </button>
        </div>
      ) : null}
    </Card>
  );
}
