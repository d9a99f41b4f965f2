import type { SavedCard } from "../../api/billing";
import type { I18n } from "../../i18n/I18nProvider";

/** "Visa ending in 4242". */
export function cardLabel(i18n: Pick<I18n, "t">, card: SavedCard): string {
  const brand = card.brand ? card.brand.charAt(0).toUpperCase() + card.brand.slice(1) : "Card";
  return i18n.t("cards.card", { brand, last4: card.last4 });
}
