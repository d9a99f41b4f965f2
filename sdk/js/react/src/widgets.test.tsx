import { render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApi } from "../../../../client/src/test/fakeApi";
import { createFakeStripe, declined, paid } from "../../../../client/src/test/fakeStripe";
import { BuyTokens, OutOfTokens, TokenBalance, TokenbankProvider } from "./index";

let api: FakeApi;
let available: number;
beforeEach(async () => {
  api = await FakeApi.start();
  available = 3;
  api.on("GET", "/api/v1/widget/balance", () => ({
    json: { external_id: "user-1", balance: available, reserved: 0, available },
  }));
  api.on("GET", "/api/v1/widget/tiers", {
    json: [
      { id: "starter", tokens: 100, price: 500, currency: "usd", description: "Try it out" },
      { id: "standard", tokens: 500, price: 2000, currency: "usd", description: "Regular" },
    ],
  });
  api.on("POST", "/api/v1/widget/purchases", (req) => {
    const tier = (req.body as { tier: string }).tier;
    return {
      json: {
        client_secret: `pi_${tier}_secret_x`, payment_intent_id: `pi_${tier}`, publishable_key: "pk_test",
        stripe_js_url: "http://stripe.invalid/v3/", tier, tokens: 100, amount: 500, currency: "usd",
      },
    };
  });
});
afterEach(async () => {
  await api.close();
});

function renderWidgets(ui: React.ReactNode, stripe = createFakeStripe()) {
  render(
    <TokenbankProvider baseUrl={api.url} token="customer-token" loadStripe={async () => stripe.stripe}>
      {ui}
    </TokenbankProvider>,
  );
  return stripe;
}

describe("TokenBalance", () => {
  it("shows the customer's available tokens from the widget endpoint, with their token", async () => {
    renderWidgets(<TokenBalance />);
    expect(await screen.findByTestId("token-balance")).toHaveTextContent(/^3$/);
    expect(screen.getByText("Running low — top up")).toBeInTheDocument();
    expect(api.requestsTo("GET", "/api/v1/widget/balance")[0]?.headers.authorization).toBe("Bearer customer-token");
  });

  it("shows a dash, not a number, when tokenbank refuses the token", async () => {
    api.on("GET", "/api/v1/widget/balance", { status: 401, json: { error: { code: "invalid_widget_token", message: "no" } } });
    renderWidgets(<TokenBalance />);
    expect(await screen.findByLabelText("Balance unavailable")).toBeInTheDocument();
    expect(screen.queryByTestId("token-balance")).not.toBeInTheDocument();
  });
});

describe("BuyTokens", () => {
  it("pays for a pack, asks tokenbank whether it was credited, then says so and refreshes the balance", async () => {
    let confirms = 0;
    api.on("POST", "/api/v1/widget/confirm", () => {
      confirms += 1;
      if (confirms === 1) return { json: { payment_intent_id: "pi_starter", status: "requires_confirmation", credited: false, tokens_added: 0, balance: 3, available: 3 } };
      available = 103;
      return { json: { payment_intent_id: "pi_starter", status: "succeeded", credited: true, tokens_added: 100, balance: 103, available: 103 } };
    });
    const stripe = createFakeStripe([paid("pi_starter")]);
    renderWidgets(<><TokenBalance /><BuyTokens /></>, stripe);
    const user = userEvent.setup();

    await user.click(await screen.findByTestId("tier-starter"));
    await user.click(await screen.findByTestId("pay-button"));

    const success = await screen.findByTestId("payment-success", {}, { timeout: 5000 });
    expect(within(success).getByText("100 tokens were added to your account.")).toBeInTheDocument();
    await waitFor(() => expect(screen.getByTestId("token-balance")).toHaveTextContent(/^103$/));
    expect(confirms).toBe(2);
    const [purchase] = api.requestsTo("POST", "/api/v1/widget/purchases");
    expect(purchase?.body).toMatchObject({ tier: "starter", idempotency_key: expect.stringMatching(/^tbc_/) });
    expect(stripe.confirmPayment).toHaveBeenCalledTimes(1);
  });

  it("keeps the form after a decline and never asks tokenbank to credit it", async () => {
    const stripe = createFakeStripe([declined("insufficient_funds", "Your card has insufficient funds.")]);
    renderWidgets(<BuyTokens />, stripe);
    const user = userEvent.setup();

    await user.click(await screen.findByTestId("tier-standard"));
    await user.click(await screen.findByTestId("pay-button"));

    expect(await screen.findByTestId("payment-error")).toBeInTheDocument();
    expect(screen.getByTestId("pay-button")).toBeEnabled();
    expect(api.requestsTo("POST", "/api/v1/widget/confirm")).toHaveLength(0);
  });

  it("reuses the idempotency key when the same pack is chosen again", async () => {
    renderWidgets(<BuyTokens />);
    const user = userEvent.setup();
    await user.click(await screen.findByTestId("tier-starter"));
    await screen.findByTestId("pay-button");
    await user.click(screen.getByTestId("tier-starter"));
    await waitFor(() => expect(api.requestsTo("POST", "/api/v1/widget/purchases")).toHaveLength(2));
    const keys = api.requestsTo("POST", "/api/v1/widget/purchases").map((r) => (r.body as { idempotency_key: string }).idempotency_key);
    expect(keys[0]).toBe(keys[1]);
  });
});

describe("OutOfTokens", () => {
  it("says what the action needs and what the customer has, with the packs to buy", async () => {
    renderWidgets(<OutOfTokens balance={2} required={5} />);
    const alert = screen.getByTestId("insufficient-tokens");
    expect(alert).toHaveAttribute("role", "alert");
    expect(alert).toHaveTextContent("This needs 5 tokens and you have 2 tokens.");
    expect(await within(alert).findByTestId("tier-starter")).toBeInTheDocument();
  });
});
