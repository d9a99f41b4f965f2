import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { plans, subscription, visa, mastercard } from "../../test/billingFixtures";
import { FakeApi, balance, fakeApiPerTest } from "../../test/fakeApi";
import { createFakeStripe, declined, paid } from "../../test/fakeStripe";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
  api.on("POST", "/api/payment/create-payment-intent", (request) => {
    const body = request.body as { tier: string; payment_method_id?: string };
    const amounts: Record<string, [number, number]> = { starter: [500, 100], standard: [2000, 500], premium: [5000, 1500] };
    const [amount, tokens] = amounts[body.tier] ?? [0, 0];
    const suffix = body.payment_method_id ? "_saved" : "";
    return {
      json: {
        client_secret: `pi_${body.tier}${suffix}_secret_abc`, payment_intent_id: `pi_${body.tier}${suffix}`,
        amount, currency: "usd", tokens, publishable_key: "pk_test_local", tier: body.tier,
        // Stripe's status: a saved card is charged at once; a new one awaits the page's card.
        status: body.payment_method_id ? "succeeded" : "requires_payment_method",
      },
    };
  });
}, 10);

function credits(id: string, tokens: number, after: number) {
  let credited = false;
  api.on("POST", "/api/payment/confirm-payment", (request) => {
    expect(request.body).toEqual({ payment_intent_id: id });
    credited = true;
    return { json: { status: "succeeded", tokens_added: tokens, balance: after } };
  });
  api.on("GET", "/api/payment/user/tokens", () => ({ json: balance(credited ? after : 10) }));
}

describe("save this card", () => {
  it("asks for a PaymentIntent that saves the card once the box is ticked, with a new key", async () => {
    const fake = createFakeStripe([paid("pi_standard")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-standard"));
    await screen.findByTestId("pay-button");
    const box = screen.getByTestId("save-card");
    expect(box).not.toBeChecked();
    await user.click(box);
    expect(box).toBeChecked();

    await waitFor(() => expect(api.requestsTo("POST", "/api/payment/create-payment-intent")).toHaveLength(2));
    const [first, second] = api.requestsTo("POST", "/api/payment/create-payment-intent");
    expect(first?.body).toEqual({ tier: "standard" });
    expect(second?.body).toEqual({ tier: "standard", save_card: true });
    expect(second?.headers["idempotency-key"]).not.toBe(first?.headers["idempotency-key"]);
    expect(await screen.findByTestId("pay-button")).toHaveTextContent("Pay $20.00");
  });
});

describe("save, then buy again in one click", () => {
  it("after paying with the box ticked, the next pack offers the saved card", async () => {
    let saved = false;
    api.on("GET", "/api/payment/saved-payment-methods", () => ({ json: { items: saved ? [visa] : [] } }));
    api.on("POST", "/api/payment/confirm-payment", () => {
      saved = true;
      return { json: { status: "succeeded", tokens_added: 100, balance: 110 } };
    });
    const fake = createFakeStripe([paid("pi_starter")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    expect(screen.queryByTestId("one-click-buy")).not.toBeInTheDocument();
    await user.click(screen.getByTestId("save-card"));
    await waitFor(() => expect(api.requestsTo("POST", "/api/payment/create-payment-intent")).toHaveLength(2));
    await user.click(await screen.findByTestId("pay-button"));
    await user.click(await screen.findByRole("button", { name: "Buy another pack" }));

    await user.click(await screen.findByTestId("tier-standard"));
    expect(await screen.findByTestId("one-click-buy")).toHaveTextContent("Pay $20.00 with Visa ending in 4242");
    // The choice to save is remembered for the next pack too.
    expect(screen.getByTestId("save-card")).toBeChecked();
  });
});

describe("buy again in one click", () => {
  it("pays with the saved card off the page and waits for the tokens", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    credits("pi_standard_saved", 500, 510);
    const fake = createFakeStripe();
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-standard"));
    const oneClick = await screen.findByTestId("one-click-buy");
    expect(oneClick).toHaveTextContent("Pay $20.00 with Visa ending in 4242");
    await user.click(oneClick);

    const success = await screen.findByTestId("payment-success");
    expect(success).toHaveTextContent("500 tokens were added");
    const saved = api.requestsTo("POST", "/api/payment/create-payment-intent").filter((r) => (r.body as { payment_method_id?: string }).payment_method_id);
    expect(saved).toHaveLength(1);
    expect(saved[0]?.body).toEqual({ tier: "standard", payment_method_id: "pm_visa" });
    expect(saved[0]?.headers["idempotency-key"]).toMatch(/.{16,}/);
    expect(fake.confirmPayment).not.toHaveBeenCalled();
    expect(fake.handleNextAction).not.toHaveBeenCalled();
  });

  it("runs the bank's 3D Secure check in the page when the server says requires_action", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa, mastercard] } });
    api.on("POST", "/api/payment/create-payment-intent", (request) => {
      const body = request.body as { tier: string; payment_method_id?: string };
      return {
        json: {
          client_secret: `pi_3ds_secret_${body.payment_method_id ?? "new"}`, payment_intent_id: "pi_3ds", amount: 500,
          currency: "usd", tokens: 100, publishable_key: "pk_test_local", tier: body.tier,
          status: body.payment_method_id ? "requires_action" : "requires_payment_method",
        },
      };
    });
    credits("pi_3ds", 100, 110);
    const fake = createFakeStripe([], [paid("pi_3ds")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    await screen.findByTestId("one-click-buy");
    // Two cards: the default first, the other on request.
    await user.selectOptions(screen.getByRole("combobox", { name: "With this card" }), "pm_mc");
    await user.click(screen.getByTestId("one-click-buy"));

    expect(await screen.findByTestId("payment-success")).toHaveTextContent("100 tokens were added");
    expect(fake.handleNextAction).toHaveBeenCalledWith({ clientSecret: "pi_3ds_secret_pm_mc" });
  });

  it("shows a failed check and charges nothing more", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("POST", "/api/payment/create-payment-intent", {
      json: {
        client_secret: "pi_x_secret", payment_intent_id: "pi_x", amount: 500, currency: "usd", tokens: 100,
        publishable_key: "pk_test_local", tier: "starter", status: "requires_action",
      },
    });
    const fake = createFakeStripe([], [declined("payment_intent_authentication_failure", "Auth failed")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    await user.click(await screen.findByTestId("one-click-buy"));

    expect(await screen.findByTestId("one-click-error")).toHaveTextContent("Your bank couldn't verify this payment (3D Secure)");
    expect(api.requestsTo("POST", "/api/payment/confirm-payment")).toHaveLength(0);
    expect(screen.getByTestId("one-click-buy")).toBeEnabled();
  });

  it("says the card was declined when the server's off-page attempt failed", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("POST", "/api/payment/create-payment-intent", {
      json: {
        client_secret: "pi_d_secret", payment_intent_id: "pi_d", amount: 500, currency: "usd", tokens: 100,
        publishable_key: "pk_test_local", tier: "starter", status: "requires_payment_method",
      },
    });
    const { user } = renderApp(api, "/payment", { stripe: createFakeStripe().stripe });

    await user.click(await screen.findByTestId("tier-starter"));
    await user.click(await screen.findByTestId("one-click-buy"));
    expect(await screen.findByTestId("one-click-error")).toHaveTextContent("Your card was declined.");
    expect(screen.queryByTestId("payment-success")).not.toBeInTheDocument();
  });
});

describe("monthly plans", () => {
  it("lists the plans beside the packs", async () => {
    api.on("GET", "/api/payment/subscription-plans", { json: { items: plans } });
    renderApp(api, "/payment");

    const basic = await screen.findByTestId("plan-basic");
    expect(basic).toHaveTextContent("$4.99 / month");
    expect(basic).toHaveTextContent("300 tokens every month");
    expect(basic).toHaveTextContent("Each month's tokens last 60 days");
    expect(screen.getByTestId("plan-pro")).toHaveTextContent("1,000 tokens every month");
    expect(screen.getByTestId("plan-premium")).toHaveTextContent("$19.99 / month");
    expect(await screen.findByTestId("tier-starter")).toBeInTheDocument();
  });

  it("subscribes: confirms the first invoice in the page, then waits until the plan is active", async () => {
    api.on("GET", "/api/payment/subscription-plans", { json: { items: plans } });
    let active = false;
    api.on("POST", "/api/payment/create-subscription", {
      json: { subscription_id: "sub_1", client_secret: "pi_invoice_secret_1", status: "incomplete" },
    });
    api.on("GET", "/api/payment/user/subscription", () => ({
      json: { subscription: active ? subscription({ plan: "pro" }) : null },
    }));
    const fake = createFakeStripe([paid("pi_invoice")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("plan-pro"));
    const subscribe = await screen.findByTestId("subscribe-button");
    expect(subscribe).toHaveTextContent("Subscribe for $9.99 a month");
    const created = api.requestsTo("POST", "/api/payment/create-subscription");
    expect(created).toHaveLength(1);
    expect(created[0]?.body).toEqual({ plan: "pro" });
    expect(created[0]?.headers["idempotency-key"]).toMatch(/.{16,}/);
    expect(fake.stripe.elements).toHaveBeenCalledWith(expect.objectContaining({ clientSecret: "pi_invoice_secret_1" }));

    active = true;
    await user.click(subscribe);
    const done = await screen.findByTestId("subscribe-success");
    expect(done).toHaveTextContent("Your Pro plan is active");
    expect(within(done).getByRole("link", { name: "See your plan" })).toHaveAttribute("href", "/subscription");
    expect(fake.confirmPayment).toHaveBeenCalledTimes(1);
  });

  it("a declined first payment stays on the form, to try another card", async () => {
    api.on("GET", "/api/payment/subscription-plans", { json: { items: plans } });
    api.on("POST", "/api/payment/create-subscription", {
      json: { subscription_id: "sub_1", client_secret: "pi_invoice_secret_1", status: "incomplete" },
    });
    const fake = createFakeStripe([declined("insufficient_funds", "No money")]);
    const { user } = renderApp(api, "/payment", { stripe: fake.stripe });

    await user.click(await screen.findByTestId("plan-basic"));
    await user.click(await screen.findByTestId("subscribe-button"));
    expect(await screen.findByTestId("payment-error")).toHaveTextContent("Your card has insufficient funds.");
    expect(screen.queryByTestId("subscribe-success")).not.toBeInTheDocument();
  });

  it("with a plan already, marks it and sends the person to manage it instead", async () => {
    api.on("GET", "/api/payment/subscription-plans", { json: { items: plans } });
    api.on("GET", "/api/payment/user/subscription", { json: { subscription: subscription({ plan: "basic" }) } });
    renderApp(api, "/payment");

    await waitFor(() => expect(screen.getByTestId("plan-basic")).toHaveTextContent("Your plan"));
    expect(screen.getByTestId("plan-pro")).toBeDisabled();
    expect(screen.getByRole("link", { name: "Manage your plan" })).toHaveAttribute("href", "/subscription");
  });
});
