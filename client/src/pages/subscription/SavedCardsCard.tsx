import { useState } from "react";
import { useRemoveCard, useSavedCards, type SavedCard } from "../../api/billing";
import { Alert } from "../../components/ui/Alert";
import { Badge } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { ConfirmDialog } from "../../components/ui/ConfirmDialog";
import { Icon } from "../../components/ui/Icon";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { cardLabel } from "../../components/billing/cards";

/** Cards the person chose to save, each with "remove". */
export function SavedCardsCard() {
  const i18n = useI18n();
  const { t } = i18n;
  const cards = useSavedCards();
  const remove = useRemoveCard();
  const [removing, setRemoving] = useState<SavedCard | null>(null);

  return (
    <Card className="p-5" data-testid="saved-cards">
      <h2 className="text-lg font-semibold text-slate-900">{t("cards.title")}</h2>
      <p className="mt-1 text-sm text-slate-500">{t("cards.subtitle")}</p>
      {cards.isPending ? (
        <Skeleton className="mt-4 h-12 w-full" />
      ) : cards.isError ? (
        <QueryError className="mt-4" title={t("cards.loadError")} error={cards.error} onRetry={() => void cards.refetch()} />
      ) : cards.data.items.length === 0 ? (
        <p className="mt-4 text-sm text-slate-600">{t("cards.none")}</p>
      ) : (
        <ul className="mt-4 divide-y divide-slate-100 rounded-xl ring-1 ring-slate-200">
          {cards.data.items.map((card) => (
            <li key={card.id} data-testid="saved-card" className="flex flex-wrap items-center gap-3 px-4 py-3">
              <Icon name="card" className="size-5 text-slate-500" />
              <div className="min-w-0 flex-1">
                <p className="text-sm font-medium text-slate-900">{cardLabel(i18n, card)}</p>
                <p className="text-xs text-slate-500">
                  {t("cards.expires", { month: String(card.exp_month).padStart(2, "0"), year: card.exp_year })}
                </p>
              </div>
              {card.is_default ? <Badge tone="brand">{t("cards.default")}</Badge> : null}
              <Button variant="ghost" size="sm" data-testid="remove-card" onClick={() => setRemoving(card)}>
                {t("cards.remove")}
              </Button>
            </li>
          ))}
        </ul>
      )}
      {remove.isError ? <Alert tone="error" role="alert" className="mt-3">{errorText(i18n, remove.error)}</Alert> : null}
      {removing ? (
        <ConfirmDialog
          title={t("cards.removeTitle", { card: cardLabel(i18n, removing) })}
          confirmLabel={t("cards.remove")}
          cancelLabel={t("subscription.back")}
          tone="danger"
          busy={remove.isPending}
          onConfirm={() => remove.mutate(removing.id, { onSettled: () => setRemoving(null) })}
          onCancel={() => setRemoving(null)}
        >
          {t("cards.removeBody")}
        </ConfirmDialog>
      ) : null}
    </Card>
  );
}
