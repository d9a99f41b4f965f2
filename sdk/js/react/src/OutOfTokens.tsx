import type { WidgetConfirmation } from "@tokenbank/client";
import { InsufficientTokensError } from "@tokenbank/client";
import { Icon } from "../../../../client/src/components/ui/Icon";
import { useI18n } from "../../../../client/src/i18n/useI18n";
import { BuyTokens } from "./BuyTokens";

const body = {
  en: "This needs {required} and you have {balance}.",
  zh: "这次需要 {required}，你现在有 {balance}。",
};

export interface OutOfTokensProps {
  /** Tokens the customer has available (the 402's ``balance``). */
  balance: number;
  /** Tokens the refused action needed (the 402's ``required``). */
  required: number;
  /** Show tokenbank's packs and card form right here (default true). */
  showBuy?: boolean;
  onPurchased?: (result: WidgetConfirmation) => void;
}

/** A 402 ``insufficient_tokens`` error's numbers, for <OutOfTokens {...outOfTokensProps(e)} />. */
export function outOfTokensProps(error: unknown): { balance: number; required: number } | null {
  if (error instanceof InsufficientTokensError) {
    return { balance: error.balance ?? 0, required: error.required ?? 0 };
  }
  const raw = (error as { error?: { code?: unknown; balance?: unknown; required?: unknown } } | null)?.error;
  if (raw?.code === "insufficient_tokens") {
    return { balance: Number(raw.balance ?? 0), required: Number(raw.required ?? 0) };
  }
  return null;
}

/**
 * Out of tokens is not a dead end (the web client's InsufficientTokens prompt): what it
 * costs, what the customer has, and the packs to buy more without leaving the page.
 */
export function OutOfTokens({ balance, required, showBuy = true, onPurchased }: OutOfTokensProps) {
  const { t, plural, lang } = useI18n();
  return (
    <section
      data-testid="insufficient-tokens"
      role="alert"
      aria-labelledby="tb-insufficient-title"
      className="tb-widget animate-fade-in rounded-2xl bg-amber-50 p-4 ring-1 ring-inset ring-amber-200 sm:p-5"
    >
      <div className="flex gap-3">
        <span className="grid size-9 shrink-0 place-items-center rounded-full bg-amber-100 text-amber-700">
          <Icon name="coin" className="size-5" />
        </span>
        <div className="min-w-0 flex-1">
          <h2 id="tb-insufficient-title" className="font-semibold text-amber-950">
            {t("insufficient.title")}
          </h2>
          <p className="mt-1 text-sm text-amber-900">
            {body[lang]
              .replace("{required}", plural("common.tokens", required))
              .replace("{balance}", plural("common.tokens", balance))}
          </p>
          {showBuy ? (
            <div className="mt-4">
              <BuyTokens {...(onPurchased ? { onPurchased } : {})} />
            </div>
          ) : null}
        </div>
      </div>
    </section>
  );
}
