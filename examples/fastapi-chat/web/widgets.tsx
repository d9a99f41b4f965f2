// The example's page mounts tokenbank's React widgets into its own plain HTML: the
// balance in the header, and the out-of-tokens prompt (with the packs and card form) when
// a reply is refused with 402. The page calls window.tokenbank.* (see static/index.html).
import { OutOfTokens, TokenBalance, TokenbankProvider, useTokenbank } from "@tokenbank/react";
import "@tokenbank/react/styles.css";
import { useEffect, useState } from "react";
import { createPortal } from "react-dom";
import { createRoot } from "react-dom/client";

interface Shortfall {
  balance: number;
  required: number;
}

declare global {
  interface Window {
    tokenbank?: { outOfTokens: (s: Shortfall | null) => void; refresh: () => void };
  }
}

let show: (s: Shortfall | null) => void = () => {};
let refresh: () => void = () => {};

function Bridge() {
  const state = useTokenbank();
  useEffect(() => {
    refresh = () => void state.refresh();
  }, [state]);
  return null;
}

function OutOfTokensSlot() {
  const [shortfall, setShortfall] = useState<Shortfall | null>(null);
  useEffect(() => {
    show = setShortfall;
  }, []);
  if (!shortfall) return null;
  // Stays (with BuyTokens' success inside once paid) until the next reply goes through.
  return <OutOfTokens {...shortfall} />;
}

/** Mount the widgets for the signed-in user; the app's server signs their token. */
export async function mountWidgets(sessionToken: string): Promise<void> {
  const fetchWidget = async () => {
    const r = await fetch("/api/billing/widget", { headers: { Authorization: `Bearer ${sessionToken}` } });
    return (await r.json()) as { token: string; tokenbank_url: string };
  };
  const first = await fetchWidget();
  const token = async () => (await fetchWidget()).token;
  // One provider (one balance) for both places in the page, through portals.
  const slot = (id: string) => document.getElementById(id)!;
  const root = document.body.appendChild(document.createElement("div"));
  createRoot(root).render(
    <TokenbankProvider baseUrl={first.tokenbank_url} token={token} lowBalance={0}>
      <Bridge />
      {createPortal(<TokenBalance />, slot("tb-balance"))}
      {createPortal(<OutOfTokensSlot />, slot("tb-out-of-tokens"))}
    </TokenbankProvider>,
  );
  window.tokenbank = { outOfTokens: (s) => show(s), refresh: () => refresh() };
}

(window as unknown as { mountWidgets: typeof mountWidgets }).mountWidgets = mountWidgets;
