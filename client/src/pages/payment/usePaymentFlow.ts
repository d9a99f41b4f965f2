import type { Stripe } from "@stripe/stripe-js";
import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from "react";
import { useApi } from "../../api/ApiProvider";
import { createPaymentIntent } from "../../api/billing";
import { fetchTokenBalance, queryKeys, refreshTokenState } from "../../api/queries";
import type { PaymentConfig, PricingTiers } from "../../api/types";
import { awaitTokens } from "../../components/payment/awaitTokens";
import { useStripeLoader } from "../../components/payment/stripeLoader";
import { newIdempotencyKey } from "../../lib/ids";
import { initialPaymentState, paymentReducer, type PaymentEvent, type PaymentState } from "./paymentMachine";

/** What the page's URL asks for: a pack (?tier=) or Stripe's redirect back (?payment_intent=). */
export interface PaymentLinks {
  presetTier: string | null;
  redirectedIntent: string | null;
  /** Stripe appends redirect_status=failed when a redirect-based payment failed. */
  redirectFailed: boolean;
}

/**
 * Runs the payment machine: each command sends an event and starts the request the
 * new state asks for; each answer comes back as an event.
 */
export function usePaymentFlow(links: PaymentLinks, tiers: PricingTiers | undefined) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [state, dispatch] = useReducer(paymentReducer, initialPaymentState);
  // The state after every event sent so far, so a command can see what its event started.
  const latest = useRef<PaymentState>(initialPaymentState);

  const send = useCallback((event: PaymentEvent) => {
    const prev = latest.current;
    latest.current = paymentReducer(prev, event);
    dispatch(event);
    return { prev, next: latest.current };
  }, []);

  /** Asks for a PaymentIntent when the event started a new request (one key per attempt). */
  const sendAndRequest = useCallback(
    (event: PaymentEvent) => {
      const { prev, next } = send(event);
      const tier = next.selected;
      if (next.requests === prev.requests || tier === null) return;
      const request = next.requests;
      const saveCard = next.saveCard;
      createPaymentIntent(api, saveCard ? { tier, save_card: true } : { tier }, newIdempotencyKey()).then(
        (data) => send({ type: "intentCreated", request, tier, saveCard, data }),
        (error: unknown) => send({ type: "intentFailed", request, error }),
      );
    },
    [api, send],
  );

  const select = useCallback((tier: string) => sendAndRequest({ type: "select", tier }), [sendAndRequest]);
  const retryIntent = useCallback(() => sendAndRequest({ type: "retryIntent" }), [sendAndRequest]);
  const setSaveCard = useCallback((save: boolean) => sendAndRequest({ type: "saveCard", save }), [sendAndRequest]);

  /** Stripe took the payment (or sent the person back): wait for the server to credit it. */
  const settle = useCallback(
    async (paymentIntentId: string) => {
      send({ type: "paid", paymentIntentId });
      try {
        const outcome = await awaitTokens(api, paymentIntentId);
        if (outcome.kind === "credited") {
          const fresh = await queryClient
            .fetchQuery({ queryKey: queryKeys.tokenBalance, queryFn: () => fetchTokenBalance(api), staleTime: 0 })
            .catch(() => null);
          await refreshTokenState(queryClient);
          send({ type: "settled", outcome: { ...outcome, balance: fresh?.available ?? outcome.balance } });
        } else {
          if (outcome.kind !== "failed") await refreshTokenState(queryClient);
          send({ type: "settled", outcome });
        }
      } catch (error) {
        send({ type: "settleFailed", error });
      }
    },
    [api, queryClient, send],
  );

  // Deep links: ?tier=standard starts that pack; ?payment_intent=pi_... is Stripe's redirect back.
  const startedFromUrl = useRef(false);
  const { presetTier, redirectedIntent, redirectFailed } = links;
  useEffect(() => {
    if (startedFromUrl.current) return;
    if (redirectedIntent && redirectFailed) {
      startedFromUrl.current = true;
      send({ type: "redirectFailed" });
    } else if (redirectedIntent) {
      startedFromUrl.current = true;
      void settle(redirectedIntent);
    } else if (presetTier && tiers && presetTier in tiers) {
      startedFromUrl.current = true;
      select(presetTier);
    }
  }, [redirectedIntent, redirectFailed, presetTier, tiers, settle, select, send]);

  return {
    state,
    select,
    retryIntent,
    setSaveCard,
    settle,
    changePack: () => send({ type: "changePack" }),
    buyMore: () => send({ type: "buyMore" }),
  };
}

/** Stripe.js for the server's publishable key, with a way to try loading it again. */
export function useStripeJs(config: PaymentConfig | undefined) {
  const loadStripe = useStripeLoader();
  const [failed, setFailed] = useState(false);
  const [attempt, setAttempt] = useState(0);
  const promise = useMemo<Promise<Stripe | null> | null>(() => {
    if (!config?.publishable_key) return null;
    void attempt; // a new attempt after a failed load
    return loadStripe(config).catch(() => {
      setFailed(true);
      return null;
    });
  }, [config, loadStripe, attempt]);
  const retry = () => {
    setFailed(false);
    setAttempt((n) => n + 1);
  };
  return { promise, failed, retry };
}
