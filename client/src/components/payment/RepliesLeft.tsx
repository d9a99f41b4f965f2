import { repliesLeft, useModels } from "../../api/pricing";
import { useTokenBalance } from "../../api/queries";
import { useI18n } from "../../i18n/useI18n";
import { useChosenModel } from "../chat/chosenModel";

/**
 * "≈ N replies left" on the chosen model, at the person's recent average there (else the
 * model's per-reply price). Nothing when there is no fair estimate (a usage-priced model
 * nobody has an average on yet) or no model list.
 */
export function RepliesLeft() {
  const { t, plural } = useI18n();
  const balance = useTokenBalance();
  const models = useModels();
  const chosen = useChosenModel();
  const items = models.data?.items ?? [];
  const model = items.find((m) => m.id === chosen) ?? items.find((m) => m.id === models.data?.default);
  const count = model && balance.data ? repliesLeft(balance.data.available, model) : null;
  if (!model || count === null) return null;
  return (
    <span
      data-testid="replies-left"
      title={t("balance.repliesLeftOn", { model: model.name })}
      className="text-xs tabular-nums opacity-80"
    >
      {plural("balance.repliesLeft", count)}
    </span>
  );
}
