import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiError, balance, FakeApi, gate, now, withDefaults } from "../../test/fakeApi";
import { createFakeStripe, declined, paid } from "../../test/fakeStripe";
import { renderApp } from "../../test/render";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
  withDefaults(api, 10);
  api.on("POST", "/api/payment/create-payment-intent", (request) => {
    const tier = (request.body as { tier: string }).tier;
    const amounts: Record<string, [number, number]> = { starter: [500, 100], standard: [2000, 500], premium: [5000, 1500] };
    const [amount, tokens] = amounts[tier] ?? [0, 0];
    return {
      json: {
        client_secret: `pi_${tier}_secret_abc`,
        payment_intent_id: `pi_${tier}`,
        amount,
        currency: "usd",
        tokens,
        publishable_key: "pk_test_local",
        tier,
        status: "requires_payment_method",
      },
    };
  });
});
afterEach(async () => {
  await api.close();
});

describe("pricing tiers", () => {
  it("renders the packs from the server with price per token and bonus over the starter rate", async () => {
    api.on("GET", "/api/payment/pricing-tiers", {
      json: {
        premium: { tokens: 3000, price: 10000, currency: "usd", description: "Big" },
        starter: { tokens: 50, price: 250, currency: "usd", description: "Small" },
      },
    });
    renderApp(api, "/payment");

    const starter = await screen.findByTestId("tier-starter");
    const premium = screen.getByTestId("tier-premium");
    expect(screen.queryByTestId("tier-standard")).not.toBeInTheDocument();
    expect(starter).toHaveTextContent("50");
    expect(starter).toHaveTextContent("$2.50");
    expect(starter).toHaveTextContent("$0.05 per token");
    expect(starter).not.toHaveTextContent("bonus");
    // 3000 tokens for $100 vs 2000 at the starter rate: +50%.
    expect(premium).toHaveTextContent("$100.00");
    expect(premium).toHaveTextContent("+50% bonus");
    expect(premium).toHaveTextContent("Best value");
  });

  it("shows the standard packs with their bonuses", async () => {
    renderApp(api, "/payment");
    expect(await screen.findByTestId("tier-standard")).toHaveTextContent("+25% bonus");
    expect(screen.getByTestId("tier-standard")).toHaveTextContent("$0.04 per token");
    expect(screen.getByTestId("tier-premium")).toHaveTextContent("+50% bonus");
  });

  it("selecting a pack highlights it and creates a PaymentIntent with an idempotency key", async () => {
    const fake = createFakeStripe();
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    const standard = await screen.findByTestId("tier-standard");
    expect(standard).toHaveAttribute("aria-pressed", "false");
    await user.click(standard);

    expect(standard).toHaveAttribute("aria-pressed", "true");
    expect(screen.getByTestId("tier-starter")).toHaveAttribute("aria-pressed", "false");
    expect(await screen.findByTestId("pay-button")).toHaveTextContent("Pay $20.00");
    expect(await screen.findByTestId("fake-payment-element")).toBeInTheDocument();

    const created = api.requestsTo("POST", "/api/payment/create-payment-intent");
    expect(created).toHaveLength(1);
    expect(created[0]?.body).toEqual({ tier: "standard" });
    expect(created[0]?.headers["idempotency-key"]).toMatch(/.{16,}/);
    expect(fake.stripe.elements).toHaveBeenCalledWith(expect.objectContaining({ clientSecret: "pi_standard_secret_abc" }));

    // Another pack is another attempt: a new PaymentIntent and a new key.
    await user.click(screen.getByTestId("tier-premium"));
    expect(await screen.findByTestId("pay-button")).toHaveTextContent("Pay $50.00");
    const again = api.requestsTo("POST", "/api/payment/create-payment-intent");
    expect(again).toHaveLength(2);
    expect(again[1]?.headers["idempotency-key"]).not.toBe(created[0]?.headers["idempotency-key"]);
  });

  it("lists the test cards in simulated mode", async () => {
    renderApp(api, "/payment");
    const banner = await screen.findByTestId("test-mode-banner");
    expect(banner).toHaveTextContent("Test mode");
    expect(banner).toHaveTextContent("4242 4242 4242 4242");
    expect(banner).toHaveTextContent("Declined: insufficient funds");
  });
});

describe("paying", () => {
  it("shows a decline in payment-error and lets the person retry on the same PaymentIntent", async () => {
    const fake = createFakeStripe([
      declined("insufficient_funds", "Your card has insufficient funds."),
      paid("pi_standard"),
    ]);
    let credited = false;
    api.on("POST", "/api/payment/confirm-payment", () => {
      credited = true;
      return { json: { status: "succeeded", tokens_added: 500, balance: 510 } };
    });
    api.on("GET", "/api/payment/user/tokens", () => ({ json: balance(credited ? 510 : 10) }));
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-standard"));
    await user.click(await screen.findByTestId("pay-button"));

    const error = await screen.findByTestId("payment-error");
    expect(error).toHaveTextContent("Your card has insufficient funds. Try another card.");
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")).toHaveLength(0);
    expect(screen.getByTestId("pay-button")).toBeEnabled();

    await user.click(screen.getByTestId("pay-button"));
    const success = await screen.findByTestId("payment-success");
    expect(success).toHaveTextContent("500 tokens were added");
    expect(success).toHaveTextContent("Your balance is now 510 tokens");
    expect(api.requestsTo("POST", "/api/payment/create-payment-intent")).toHaveLength(1);
    expect(fake.confirmPayment).toHaveBeenCalledTimes(2);
    expect(fake.confirmPayment.mock.calls[1]).toEqual([
      expect.objectContaining({ redirect: "if_required", elements: expect.anything() }),
    ]);
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")[0]?.body).toEqual({ payment_intent_id: "pi_standard" });
    // The balance in the navigation was refreshed too.
    await waitFor(() => expect(screen.getByTestId("token-balance")).toHaveTextContent("510"));
  });

  it("disables Pay while Stripe is confirming", async () => {
    const answer = gate<ReturnType<typeof declined>>();
    const fake = createFakeStripe([answer.promise]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    const pay = await screen.findByTestId("pay-button");
    await user.click(pay);
    expect(pay).toBeDisabled();
    await user.click(pay);
    expect(fake.confirmPayment).toHaveBeenCalledTimes(1);

    answer.open(declined("expired_card", "Your card has expired."));
    expect(await screen.findByTestId("payment-error")).toHaveTextContent("Your card has expired.");
    expect(pay).toBeEnabled();
  });

  it("says success only once the server reports the tokens are in", async () => {
    const fake = createFakeStripe([paid("pi_starter")]);
    const serverCredits = gate();
    let confirmCalls = 0;
    api.on("POST", "/api/payment/confirm-payment", async () => {
      confirmCalls += 1;
      if (confirmCalls === 1) return { json: { status: "succeeded", tokens_added: 0, balance: 10 } };
      await serverCredits.promise;
      return { json: { status: "succeeded", tokens_added: 100, balance: 110 } };
    });
    api.on("GET", "/api/payment/payments/:id", (_request, params) => ({
      json: {
        id: 1, payment_intent_id: params.id, status: "succeeded", tier: "starter", tokens: 100,
        amount: 500, currency: "usd", tokens_credited: 0, reversed_tokens: 0, amount_refunded: 0,
        dispute_status: null, last_error_code: null, created_at: now, updated_at: now,
      },
    }));
    const { user } = renderApp(api, "/payment?return=/chat/7", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    await user.click(await screen.findByTestId("pay-button"));

    expect(await screen.findByText("Payment received — adding your tokens…")).toBeInTheDocument();
    await waitFor(() => expect(confirmCalls).toBe(2), { timeout: 5000 });
    expect(api.requestsTo("GET", "/api/payment/payments/pi_starter")).toHaveLength(1);
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();
    expect(screen.getByTestId("pay-button")).toBeDisabled();

    serverCredits.open();
    const success = await screen.findByTestId("payment-success");
    expect(success).toHaveTextContent("100 tokens were added");
    const back = within(success).getByRole("link", { name: /Back to chat/ });
    expect(back).toHaveAttribute("href", "/chat/7");
  });

  it("says the tokens will arrive later when the bank is still processing", async () => {
    const fake = createFakeStripe([paid("pi_premium", "processing")]);
    api.on("POST", "/api/payment/confirm-payment", { json: { status: "processing", tokens_added: 0, balance: 10 } });
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-premium"));
    await user.click(await screen.findByTestId("pay-button"));

    expect(await screen.findByText("Your bank is confirming the payment")).toBeInTheDocument();
    expect(screen.getByText(/tokens will arrive automatically/)).toBeInTheDocument();
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();
  });

  it("treats a payment the server reports as failed as a failure at once, not as pending", async () => {
    const fake = createFakeStripe([paid("pi_standard", "processing")]);
    api.on("POST", "/api/payment/confirm-payment", { json: { status: "failed", tokens_added: 0, balance: 10 } });
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-standard"));
    await user.click(await screen.findByTestId("pay-button"));

    expect(await screen.findByTestId("payment-error")).toHaveTextContent("The payment didn't go through");
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")).toHaveLength(1);
    expect(screen.queryByText("Your bank is confirming the payment")).not.toBeInTheDocument();
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();
    expect(screen.getByTestId("pay-button")).toBeEnabled();
  });

  it("shows a failed redirect as a failure without asking the server to credit it", async () => {
    renderApp(api, "/payment?payment_intent=pi_standard&payment_intent_client_secret=pi_standard_secret_abc&redirect_status=failed");

    const failed = await screen.findByTestId("payment-failed");
    expect(failed).toHaveTextContent("The payment didn't go through");
    expect(failed).toHaveTextContent("Nothing was charged");
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")).toHaveLength(0);
    expect(screen.queryByText("Your bank is confirming the payment")).not.toBeInTheDocument();
  });

  it("shows a redirect that came back failed on the server's word as a failure", async () => {
    api.on("POST", "/api/payment/confirm-payment", { json: { status: "requires_payment_method", tokens_added: 0, balance: 10 } });
    renderApp(api, "/payment?payment_intent=pi_standard&redirect_status=succeeded");

    expect(await screen.findByTestId("payment-failed")).toHaveTextContent("The payment didn't go through");
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")).toHaveLength(1);
  });

  it("says so when a redirect back cannot be confirmed, and checks again on request", async () => {
    api.on("POST", "/api/payment/confirm-payment", apiError(404, "payment_not_found", "Payment not found"));
    const { user } = renderApp(api, "/payment?payment_intent=pi_standard&redirect_status=succeeded");

    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("We couldn't confirm your payment yet");
    expect(alert).toHaveTextContent("We couldn't find that payment.");
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();

    api.on("POST", "/api/payment/confirm-payment", { json: { status: "succeeded", tokens_added: 500, balance: 510 } });
    await user.click(within(alert).getByRole("button", { name: "Check again" }));
    expect(await screen.findByTestId("payment-success")).toHaveTextContent("500");
  });

  it("goes back to the chat from the success screen", async () => {
    const fake = createFakeStripe([paid("pi_standard")]);
    api.on("POST", "/api/payment/confirm-payment", { json: { status: "succeeded", tokens_added: 500, balance: 510 } });
    api.on("GET", "/api/chats/:id/messages", { json: [] });
    const { user, location } = renderApp(api, "/payment?tier=standard&return=/chat/7", { stripe: fake.stripe });

    // ?tier= starts that pack straight away.
    await user.click(await screen.findByTestId("pay-button"));
    await user.click(await screen.findByRole("link", { name: /Back to chat/ }));
    expect(location.history.at(-1)).toBe("/chat/7");
    expect(await screen.findByTestId("chat-input")).toBeInTheDocument();
  });

  it("ignores a return path that leaves the site", async () => {
    const fake = createFakeStripe([paid("pi_standard")]);
    api.on("POST", "/api/payment/confirm-payment", { json: { status: "succeeded", tokens_added: 500, balance: 510 } });
    const { user } = renderApp(api, "/payment?return=//evil.example/", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-standard"));
    await user.click(await screen.findByTestId("pay-button"));
    const success = await screen.findByTestId("payment-success");
    expect(within(success).queryByRole("link", { name: /Back to chat/ })).not.toBeInTheDocument();
    expect(within(success).getByRole("link", { name: /Start chatting/ })).toHaveAttribute("href", "/chat");
  });
});
