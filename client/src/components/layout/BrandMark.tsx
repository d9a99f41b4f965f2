import { Icon } from "../ui/Icon";

/** The app's mark, the coin in a rounded square: solid brand colour, or `onBrand` (a
 * translucent square) where it stands on the brand's own colour. */
export function BrandMark({ onBrand = false }: { onBrand?: boolean }) {
  return (
    <span className={onBrand
      ? "grid size-9 place-items-center rounded-lg bg-white/15"
      : "grid size-8 place-items-center rounded-lg bg-brand-600 text-white"}>
      <Icon name="coin" className="size-5" />
    </span>
  );
}
