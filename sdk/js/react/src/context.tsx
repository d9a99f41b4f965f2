import { createWidgetClient, type TokenSource, type WidgetBalance, type WidgetClient } from "@tokenbank/client";
import { createContext, useCallback, useContext, useEffect, useMemo, useState, type ReactNode } from "react";
import { loadStripeFromServer, type StripeLoader } from "../../../../client/src/components/payment/stripeLoader";
import { WidgetI18n, type Lang } from "./i18n";

export interface TokenbankState {
  client: WidgetClient;
  /** The customer's balance; null until the first answer. */
  balance: WidgetBalance | null;
  /** True when the last balance request failed. */
  balanceError: boolean;
  /** Ask tokenbank for the balance again (after a reply was charged, say). */
  refresh: () => Promise<void>;
  loadStripe: StripeLoader;
  lowBalance: number;
}

const TokenbankContext = createContext<TokenbankState | null>(null);

export interface TokenbankProviderProps {
  /** Where tokenbank is, e.g. https://tokens.example.com */
  baseUrl: string;
  /** The customer token your server signed for the signed-in person, or a function
   * fetching a fresh one (called per request). */
  token: TokenSource;
  /** English or Chinese, as in tokenbank's own pages. */
  lang?: Lang;
  /** Below this many available tokens the balance is shown as running low. */
  lowBalance?: number;
  /** Ask for the balance again every so many milliseconds (off by default). */
  pollMs?: number;
  /** How Stripe.js is loaded (tests hand in a fake). */
  loadStripe?: StripeLoader;
  /** A ready client instead of one made from baseUrl and token. */
  client?: WidgetClient;
  children: ReactNode;
}

/** Gives the widgets inside it one customer's tokenbank, by the token your server signed. */
export function TokenbankProvider({
  baseUrl,
  token,
  lang = "en",
  lowBalance = 10,
  pollMs,
  loadStripe = loadStripeFromServer,
  client: given,
  children,
}: TokenbankProviderProps) {
  const client = useMemo(() => given ?? createWidgetClient({ baseUrl, token }), [given, baseUrl, token]);
  const [balance, setBalance] = useState<WidgetBalance | null>(null);
  const [balanceError, setBalanceError] = useState(false);

  const refresh = useCallback(async () => {
    try {
      setBalance(await client.balance());
      setBalanceError(false);
    } catch {
      setBalanceError(true);
    }
  }, [client]);

  useEffect(() => {
    void refresh();
    if (!pollMs) return;
    const timer = setInterval(() => void refresh(), pollMs);
    return () => clearInterval(timer);
  }, [refresh, pollMs]);

  const state = useMemo<TokenbankState>(
    () => ({ client, balance, balanceError, refresh, loadStripe, lowBalance }),
    [client, balance, balanceError, refresh, loadStripe, lowBalance],
  );
  return (
    <TokenbankContext.Provider value={state}>
      <WidgetI18n lang={lang}>{children}</WidgetI18n>
    </TokenbankContext.Provider>
  );
}

export function useTokenbank(): TokenbankState {
  const state = useContext(TokenbankContext);
  if (!state) throw new Error("tokenbank widgets must be inside <TokenbankProvider>");
  return state;
}
