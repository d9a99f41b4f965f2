import type { WidgetConfirmation } from "@tokenbank/client";
import { InsufficientTokensError } from "@tokenbank/client";
import { OutOfTokensFrame } from "../../../../client/src/components/chat/InsufficientTokens";
import { BuyTokens } from "./BuyTokens";

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
  return (
    <OutOfTokensFrame balance={balance} required={required} what="action" className="tb-widget">
      {showBuy ? (
        <div className="mt-4">
          <BuyTokens {...(onPurchased ? { onPurchased } : {})} />
        </div>
      ) : null}
    </OutOfTokensFrame>
  );
}
