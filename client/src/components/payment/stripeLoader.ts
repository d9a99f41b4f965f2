/**
 * Loads Stripe.js from the URL the server names (real Stripe, or the local
 * stand-in in simulated mode) and then calls `loadStripe`, which reuses the
 * `window.Stripe` the script defined. The "pure" entry point matters: the
 * default one injects js.stripe.com on import, which would race the stand-in.
 */
import type { Stripe } from "@stripe/stripe-js";
import { loadStripe } from "@stripe/stripe-js/pure";
import { createContext, useContext } from "react";
import { sleep } from "../../lib/sleep";

export interface StripeSource {
  /** Null when the server has no Stripe keys configured. */
  publishable_key: string | null;
  stripe_js_url: string;
}

export type StripeLoader = (source: StripeSource) => Promise<Stripe | null>;

const SCRIPT_TIMEOUT_MS = 15_000;
let scriptLoad: { url: string; promise: Promise<void> } | null = null;
const instances = new Map<string, Promise<Stripe | null>>();

async function waitForGlobal(deadline: number): Promise<void> {
  while (!window.Stripe) {
    if (Date.now() > deadline) throw new Error("Stripe.js did not define window.Stripe");
    await sleep(50);
  }
}

function injectScript(url: string): Promise<void> {
  if (window.Stripe) return Promise.resolve();
  if (scriptLoad?.url === url) return scriptLoad.promise;
  const deadline = Date.now() + SCRIPT_TIMEOUT_MS;
  const promise = new Promise<void>((resolve, reject) => {
    const script = document.createElement("script");
    script.src = url;
    script.async = true;
    script.dataset.stripeLoader = "tokenbank";
    script.addEventListener("load", () => resolve());
    script.addEventListener("error", () => {
      script.remove();
      reject(new Error(`Could not load ${url}`));
    });
    document.head.appendChild(script);
  }).then(() => waitForGlobal(deadline));
  scriptLoad = { url, promise };
  // A failed load may be retried later (e.g. after the network comes back).
  promise.catch(() => {
    if (scriptLoad?.promise === promise) scriptLoad = null;
  });
  return promise;
}

export const loadStripeFromServer: StripeLoader = (source) => {
  const publishableKey = source.publishable_key;
  if (!publishableKey) return Promise.reject(new Error("Payments are not configured"));
  const cacheKey = `${source.stripe_js_url}|${source.publishable_key}`;
  const cached = instances.get(cacheKey);
  if (cached) return cached;
  const promise = injectScript(source.stripe_js_url).then(() => loadStripe(publishableKey));
  instances.set(cacheKey, promise);
  promise.catch(() => instances.delete(cacheKey));
  return promise;
};

/** Which loader the payment page uses; tests provide one that returns a fake Stripe. */
export const StripeLoaderContext = createContext<StripeLoader>(loadStripeFromServer);

export function useStripeLoader(): StripeLoader {
  return useContext(StripeLoaderContext);
}
