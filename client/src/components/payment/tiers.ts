import type { PricingTier, PricingTiers } from "../../api/types";
import type { I18n } from "../../i18n/I18nProvider";

export interface TierView extends PricingTier {
  id: string;
  /** Minor units per token. */
  unitPrice: number;
  /** Extra tokens compared with buying at the starter rate, in whole percent. */
  bonusPct: number;
}

/** Tiers cheapest first, each with its per-token price and bonus over the starter rate. */
export function tierViews(tiers: PricingTiers): TierView[] {
  const list = Object.entries(tiers)
    .filter(([, tier]) => tier.tokens > 0 && tier.price > 0)
    .map(([id, tier]) => ({ id, ...tier, unitPrice: tier.price / tier.tokens }));
  list.sort((a, b) => a.price - b.price || a.tokens - b.tokens);
  // The starter rate is the baseline; without a starter, the dearest per-token rate is.
  const base = list.find((tier) => tier.id === "starter") ??
    list.reduce<(typeof list)[number] | undefined>(
      (worst, tier) => (!worst || tier.unitPrice > worst.unitPrice ? tier : worst),
      undefined,
    );
  return list.map((tier) => ({
    ...tier,
    bonusPct: base ? Math.round((base.unitPrice / tier.unitPrice - 1) * 100) : 0,
  }));
}

export function tierName(i18n: Pick<I18n, "t" | "has">, id: string): string {
  const key = `tier.${id}`;
  if (i18n.has(key)) return i18n.t(key);
  return id.charAt(0).toUpperCase() + id.slice(1).replace(/[_-]+/g, " ");
}
