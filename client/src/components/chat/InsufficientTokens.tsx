import { useEffect, useId, useRef, type ReactNode, type RefObject } from "react";
import { Link } from "wouter";
import { usePricingTiers } from "../../api/queries";
import { useI18n } from "../../i18n/useI18n";
import { formatMoney } from "../../lib/format";
import { paymentLink } from "../../lib/returnPath";
import { tierName, tierViews } from "../payment/tiers";
import { Icon } from "../ui/Icon";

interface InsufficientTokensProps {
  balance: number;
  /** What the reply needs, as the server said; null when it did not say. */
  required: number | null;
  /** `required` is the least the reply can cost (the quote's minimum), not its price. */
  atLeast?: boolean;
  /** Where the payment page should bring the person back to. */
  returnPath: string;
}

/** Out of tokens is not a dead end: what it costs, what you have, and the packs. */
export function InsufficientTokens({ balance, required, atLeast = false, returnPath }: InsufficientTokensProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const tiers = usePricingTiers();
  const packs = tiers.data ? tierViews(tiers.data) : [];
  const sectionRef = useRef<HTMLElement>(null);
  // Bring the whole prompt into view, again once the packs have loaded and made it taller.
  useEffect(() => {
    sectionRef.current?.scrollIntoView?.({ block: "nearest" });
  }, [packs.length]);
  return (
    <OutOfTokensFrame
      balance={balance}
      required={required}
      what={atLeast ? "replyAtLeast" : "reply"}
      sectionRef={sectionRef}
      className="scroll-mb-44"
    >
      {packs.length ? (
        <ul className="mt-3 flex flex-wrap gap-2">
          {packs.map((pack) => (
            <li key={pack.id}>
              <Link
                href={paymentLink(returnPath, pack.id)}
                className="inline-flex items-center gap-2 rounded-lg bg-white px-3 py-2 text-sm font-medium text-slate-800 shadow-sm ring-1 ring-amber-200 hover:ring-amber-400"
              >
                <span className="shrink-0 whitespace-nowrap text-slate-500">{tierName(i18n, pack.id)}</span>
                {t("insufficient.pack", {
                  tokens: pack.tokens,
                  price: formatMoney(pack.price, pack.currency, locale),
                })}
                {pack.bonusPct > 0 ? (
                  <span className="shrink-0 rounded-full bg-emerald-50 px-1.5 text-xs font-semibold text-emerald-700">
                    +{pack.bonusPct}%
                  </span>
                ) : null}
              </Link>
            </li>
          ))}
        </ul>
      ) : null}
      <Link
        href={paymentLink(returnPath)}
        className="mt-3 inline-flex items-center gap-1 text-sm font-semibold text-amber-900 underline-offset-2 hover:underline"
      >
        {t("insufficient.seeAll")} →
      </Link>
    </OutOfTokensFrame>
  );
}

const bodies = {
  reply: "insufficient.body",
  replyAtLeast: "insufficient.bodyAtLeast",
  action: "insufficient.bodyAction",
} as const;

interface OutOfTokensFrameProps {
  balance: number;
  /** What was needed, as the server said; null when it did not say. */
  required: number | null;
  sectionRef?: RefObject<HTMLElement | null>;
  className?: string;
  /**
   * What was refused: an AI reply (the chat's words), one the quote says costs at least
   * `required`, or any action (the widget's).
   */
  what?: "reply" | "replyAtLeast" | "action";
  /** What to offer: links to the packs here, the card form in the embeddable widget. */
  children?: ReactNode;
}

/** The out-of-tokens prompt's frame: what it costs, what you have, then `children`. */
export function OutOfTokensFrame({
  balance,
  required,
  sectionRef,
  className = "",
  what = "reply",
  children,
}: OutOfTokensFrameProps) {
  const { t, plural } = useI18n();
  const titleId = useId();
  return (
    <section
      ref={sectionRef}
      data-testid="insufficient-tokens"
      role="alert"
      aria-labelledby={titleId}
      className={`animate-fade-in rounded-2xl bg-amber-50 p-4 ring-1 ring-inset ring-amber-200 sm:p-5 ${className}`}
    >
      <div className="flex gap-3">
        <span className="grid size-9 shrink-0 place-items-center rounded-full bg-amber-100 text-amber-700">
          <Icon name="coin" className="size-5" />
        </span>
        <div className="min-w-0 flex-1">
          <h2 id={titleId} className="font-semibold text-amber-950">
            {t("insufficient.title")}
          </h2>
          <p className="mt-1 text-sm text-amber-900">
            {required === null
              ? t("insufficient.bodyNoCost", { balance: plural("common.tokens", balance) })
              : t(bodies[what], {
                  required: plural("common.tokens", required),
                  balance: plural("common.tokens", balance),
                })}
          </p>
          {children}
        </div>
      </div>
    </section>
  );
}
