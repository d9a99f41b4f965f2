import { screen, waitFor, within } from "@testing-library/react";
import { beforeAll, describe, expect, it } from "vitest";
import type { Subscription } from "../../api/billing";
import { autoTopup, inDays, lot, plans, subscription, visa } from "../../test/billingFixtures";
import { apiError, FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { createFakeStripe, declined, paid } from "../../test/fakeStripe";
import { LANG_STORAGE_KEY } from "../../i18n/I18nProvider";
import { renderApp } from "../../test/render";

beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started.on("GET", "/api/payment/subscription-plans", { json: { items: plans } });
});

function dateOf(iso: string | null): string {
  if (iso === null) throw new Error("the fixture's subscription has no period");
  return new Intl.DateTimeFormat("en-US", { month: "short", day: "numeric", ...(new Date(iso).getFullYear() !== new Date().getFullYear() ? { year: "numeric" } : {}) }).format(new Date(iso));
}

/** The server's subscription, changed by the actions the page posts. */
function serveSubscription(initial: Subscription | null) {
  let current = initial;
  api.on("GET", "/api/payment/user/subscription", () => ({ json: { subscription: current } }));
  const answer = (next: Subscription) => {
    current = next;
    return { json: next };
  };
  api.on("POST", "/api/payment/update-subscription", (request) => {
    const plan = (request.body as { plan: Subscription["plan"] }).plan;
    return answer(plan === "basic" ? { ...current!, scheduled_plan: "basic" } : { ...current!, plan });
  });
  api.on("POST", "/api/payment/cancel-subscription", () => answer({ ...current!, cancel_at_period_end: true }));
  api.on("POST", "/api/payment/resume-subscription", () => answer({ ...current!, cancel_at_period_end: false }));
  return { set: (next: Subscription) => { current = next; } };
}

describe("the subscription", () => {
  it("shows a subscription Stripe has no period for yet, and a paused one, in words", async () => {
    const served = serveSubscription(subscription({ status: "incomplete", current_period_start: null, current_period_end: null }));
    const { unmount } = renderApp(api, "/subscription");

    expect(await screen.findByTestId("subscription-status")).toHaveTextContent("Awaiting first payment");
    expect(screen.getByTestId("subscription-renewal")).toHaveTextContent("Renews on —");
    unmount();

    served.set(subscription({ status: "paused" }));
    renderApp(api, "/subscription");
    expect(await screen.findByTestId("subscription-status")).toHaveTextContent("Paused");
  });

  it("shows the plan, its status, the next renewal and the allotment left with its expiry", async () => {
    const sub = subscription({ plan: "pro" });
    serveSubscription(sub);
    const expiry = inDays(40);
    api.on("GET", "/api/payment/user/lots", {
      json: {
        items: [
          lot(3, { source: "allotment", amount: 1000, remaining: 700, expires_at: expiry }),
          lot(2, { source: "allotment", amount: 1000, remaining: 0, expires_at: inDays(-3) }),
          lot(1, { source: "purchase", amount: 500, remaining: 500 }),
        ],
      },
    });
    renderApp(api, "/subscription");

    expect(await screen.findByTestId("subscription-status")).toHaveTextContent("Active");
    expect(screen.getByTestId("subscription-plan")).toHaveTextContent("Pro");
    expect(screen.getByTestId("subscription-renewal")).toHaveTextContent(`Renews on ${dateOf(sub.current_period_end)}`);
    await waitFor(() => expect(screen.getByTestId("allotment-left")).toHaveTextContent("700 tokens"));
    expect(screen.getByTestId("allotment-expiry")).toHaveTextContent(`The soonest expire on ${dateOf(expiry)}`);
    expect(screen.getByTestId("nav-subscription")).toHaveAttribute("aria-current", "page");
    expect(screen.queryByTestId("customer-portal")).not.toBeInTheDocument();
  });

  it("without one, points to the plans", async () => {
    renderApp(api, "/subscription");
    const none = await screen.findByTestId("no-subscription");
    expect(within(none).getByRole("link", { name: "See the plans" })).toHaveAttribute("href", "/payment#plans");
  });

  it("upgrades after a confirmation that says it is charged now", async () => {
    serveSubscription(subscription({ plan: "pro" }));
    const { user } = renderApp(api, "/subscription");

    await user.click(await screen.findByTestId("change-to-premium"));
    const dialog = screen.getByRole("alertdialog");
    expect(dialog).toHaveTextContent("You pay the difference for the rest of this month now");
    await user.click(within(dialog).getByRole("button", { name: "Switch plan" }));

    await waitFor(() => expect(screen.getByTestId("subscription-plan")).toHaveTextContent("Premium"));
    expect(api.requestsTo("POST", "/api/payment/update-subscription")[0]?.body).toEqual({ plan: "premium" });
    expect(await screen.findByRole("status")).toHaveTextContent("Done — your plan is changing to Premium.");
  });

  it("a downgrade says it happens at renewal and shows the switch scheduled", async () => {
    const sub = subscription({ plan: "pro" });
    serveSubscription(sub);
    const { user } = renderApp(api, "/subscription");

    await user.click(await screen.findByTestId("change-to-basic"));
    expect(screen.getByRole("alertdialog")).toHaveTextContent(`at your next renewal, on ${dateOf(sub.current_period_end)}`);
    await user.click(screen.getByRole("button", { name: "Switch plan" }));
    expect(await screen.findByText(`Switches to Basic on ${dateOf(sub.current_period_end)}`)).toBeInTheDocument();
  });

  it("cancels at period end, and can be resumed", async () => {
    const sub = subscription();
    serveSubscription(sub);
    const { user } = renderApp(api, "/subscription");

    await user.click(await screen.findByTestId("cancel-subscription"));
    const dialog = screen.getByRole("alertdialog");
    expect(dialog).toHaveTextContent(`It stays active until ${dateOf(sub.current_period_end)}`);
    await user.click(within(dialog).getByRole("button", { name: "Cancel at period end" }));

    await waitFor(() =>
      expect(screen.getByTestId("subscription-status")).toHaveTextContent(`Active until ${dateOf(sub.current_period_end)}`),
    );
    expect(screen.getByTestId("subscription-renewal")).toHaveTextContent("Ends on");
    expect(api.requestsTo("POST", "/api/payment/cancel-subscription")).toHaveLength(1);

    await user.click(screen.getByTestId("resume-subscription"));
    await waitFor(() => expect(screen.getByTestId("subscription-status")).toHaveTextContent(/^Active$/));
    expect(screen.getByTestId("cancel-subscription")).toBeInTheDocument();
  });

  it("past_due: says why no tokens come and lets the person pay with another card", async () => {
    const server = serveSubscription(subscription({ status: "past_due", problem: "payment_failed", client_secret: "pi_inv2_secret" }));
    const fake = createFakeStripe([declined("card_declined", "Declined"), paid("pi_inv2")]);
    const { user } = renderApp(api, "/subscription", { stripe: fake.stripe });

    const problem = await screen.findByTestId("subscription-problem");
    expect(problem).toHaveTextContent("Your last payment didn't go through");
    expect(problem).toHaveTextContent("No tokens are added for this month until it is paid");
    expect(screen.getByTestId("subscription-status")).toHaveTextContent("Payment failed");

    await waitFor(() => expect(within(problem).getByTestId("fix-card")).toBeEnabled());
    await user.click(within(problem).getByTestId("fix-card"));
    await user.click(await screen.findByTestId("fix-card-pay"));
    expect(await screen.findByTestId("payment-error")).toHaveTextContent("Your card was declined.");
    expect(fake.stripe.elements).toHaveBeenCalledWith(expect.objectContaining({ clientSecret: "pi_inv2_secret" }));

    server.set(subscription({ status: "active" }));
    await user.click(screen.getByTestId("fix-card-pay"));
    expect(await screen.findByTestId("subscription-fixed")).toHaveTextContent("the payment went through");
    await waitFor(() => expect(screen.getByTestId("subscription-status")).toHaveTextContent("Active"));
  });

  it("a renewal waiting for 3D Secure runs the bank's check in the page", async () => {
    const server = serveSubscription(subscription({ status: "past_due", problem: "requires_action", client_secret: "pi_3ds_secret" }));
    const fake = createFakeStripe([], [paid("pi_3ds")]);
    const { user } = renderApp(api, "/subscription", { stripe: fake.stripe });

    expect(await screen.findByTestId("subscription-problem")).toHaveTextContent("Your bank wants to verify the payment");
    server.set(subscription({ status: "active" }));
    // Enabled once Stripe.js is in.
    await waitFor(() => expect(screen.getByTestId("fix-card")).toBeEnabled());
    await user.click(screen.getByTestId("fix-card"));
    expect(await screen.findByTestId("subscription-fixed")).toBeInTheDocument();
    expect(fake.handleNextAction).toHaveBeenCalledWith({ clientSecret: "pi_3ds_secret" });
  });

  it("offers the Customer Portal when available, and explains when the server cannot open it", async () => {
    serveSubscription(subscription({ portal_available: true }));
    api.on("POST", "/api/payment/customer-portal", apiError(409, "portal_unavailable", "no portal"));
    const { user } = renderApp(api, "/subscription");

    await user.click(await screen.findByTestId("customer-portal"));
    expect(await screen.findByRole("alert")).toHaveTextContent("only available with live Stripe");
  });
});

describe("saved cards", () => {
  it("lists them and removes one after asking", async () => {
    let cards = [visa, { ...visa, id: "pm_2", last4: "1881", is_default: false }];
    api.on("GET", "/api/payment/saved-payment-methods", () => ({ json: { items: cards } }));
    api.on("DELETE", "/api/payment/saved-payment-methods/:id", (_request, params) => {
      cards = cards.filter((card) => card.id !== params.id);
      return { status: 204 };
    });
    const { user } = renderApp(api, "/subscription");

    const rows = await screen.findAllByTestId("saved-card");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("Visa ending in 4242");
    expect(rows[0]).toHaveTextContent("Expires 04/2030");
    expect(rows[0]).toHaveTextContent("Default");

    await user.click(within(rows[1]!).getByTestId("remove-card"));
    await user.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Remove" }));
    await waitFor(() => expect(screen.getAllByTestId("saved-card")).toHaveLength(1));
    expect(api.requestsTo("DELETE", "/api/payment/saved-payment-methods/pm_2")).toHaveLength(1);
  });
});

describe("automatic top-up", () => {
  it("turns it on with a threshold, a pack and monthly limits", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup() });
    api.on("PUT", "/api/payment/auto-topup", (request) => ({
      json: { ...autoTopup(), ...(request.body as object), state: "active", this_month: { count: 0, amount: 0 } },
    }));
    const { user } = renderApp(api, "/subscription");

    expect(await screen.findByTestId("auto-topup-state")).toHaveTextContent("Off");
    const enabled = await screen.findByTestId("auto-topup-enabled");
    await user.click(enabled);
    const threshold = screen.getByLabelText("When fewer than this many tokens are left");
    await user.clear(threshold);
    await user.type(threshold, "50");
    await user.selectOptions(screen.getByLabelText("Buy this pack"), "starter");
    const count = screen.getByLabelText("At most this many top-ups a month");
    await user.clear(count);
    await user.type(count, "2");
    const amount = screen.getByLabelText("At most this much a month (USD)");
    expect(amount).toHaveValue("60.00");
    await user.clear(amount);
    await user.type(amount, "12.50");
    await user.click(screen.getByTestId("auto-topup-save"));

    expect(await screen.findByTestId("auto-topup-saved")).toHaveTextContent("Saved.");
    expect(api.requestsTo("PUT", "/api/payment/auto-topup")[0]?.body).toEqual({
      enabled: true, threshold: 50, tier: "starter", monthly_max_count: 2, monthly_max_amount: 1250, payment_method_id: "pm_visa",
    });
    expect(screen.getByTestId("auto-topup-state")).toHaveTextContent("On");
    expect(screen.getByTestId("auto-topup-usage")).toHaveTextContent("This month: 0 top-ups, $0.00");
  });

  it("suggests monthly limits to someone who never set them, so ticking on and saving works", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup({ monthly_max_count: 0, monthly_max_amount: 0 }) });
    api.on("PUT", "/api/payment/auto-topup", (request) => ({
      json: { ...autoTopup(), ...(request.body as object), state: "active" },
    }));
    const { user } = renderApp(api, "/subscription");

    await user.click(await screen.findByTestId("auto-topup-enabled"));
    expect(screen.getByLabelText("At most this many top-ups a month")).toHaveValue("3");
    expect(screen.getByLabelText("At most this much a month (USD)")).toHaveValue("60.00");
    await user.click(screen.getByTestId("auto-topup-save"));

    expect(await screen.findByTestId("auto-topup-saved")).toHaveTextContent("Saved.");
    expect(api.requestsTo("PUT", "/api/payment/auto-topup")[0]?.body).toMatchObject({
      enabled: true, tier: "standard", monthly_max_count: 3, monthly_max_amount: 6000,
    });
  });

  it("refuses a threshold that is not a whole number", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup({ enabled: true, state: "active" }) });
    const { user } = renderApp(api, "/subscription");

    const threshold = await screen.findByLabelText("When fewer than this many tokens are left");
    await user.clear(threshold);
    await user.type(threshold, "2.5");
    await user.click(screen.getByTestId("auto-topup-save"));
    expect(await screen.findByText("Enter a whole number of at least 1.")).toBeInTheDocument();
    expect(api.requestsTo("PUT", "/api/payment/auto-topup")).toHaveLength(0);
  });

  it("shows a pause with its reason, the failures and the link to finish the payment", async () => {
    api.on("GET", "/api/payment/saved-payment-methods", { json: { items: [visa] } });
    api.on("GET", "/api/payment/auto-topup", {
      json: autoTopup({
        enabled: true, state: "paused", paused_reason: "requires_action", consecutive_failures: 1,
        this_month: { count: 1, amount: 2000 }, action_url: "https://pay.example/finish/pi_1",
      }),
    });
    renderApp(api, "/subscription");

    const paused = await screen.findByTestId("auto-topup-paused");
    expect(screen.getByTestId("auto-topup-state")).toHaveTextContent("Paused");
    expect(paused).toHaveTextContent("Your bank wanted to verify the last top-up.");
    expect(paused).toHaveTextContent("1 failed attempt in a row");
    expect(within(paused).getByTestId("auto-topup-action")).toHaveAttribute("href", "https://pay.example/finish/pi_1");
    expect(screen.getByTestId("auto-topup-usage")).toHaveTextContent("This month: 1 top-up, $20.00");
  });

  it("asks for a saved card before it can be turned on", async () => {
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup() });
    renderApp(api, "/subscription");
    expect(await screen.findByText(/Save a card first/)).toBeInTheDocument();
    expect(screen.getByTestId("auto-topup-enabled")).toBeDisabled();
  });
});

describe("back from a redirect", () => {
  it("a failed redirect says nothing was charged", async () => {
    renderApp(api, "/subscription?payment_intent=pi_1&redirect_status=failed");
    expect(await screen.findByTestId("subscription-redirect-failed")).toHaveTextContent("Nothing was charged");
  });

  it("a successful one waits for the plan and then shows it", async () => {
    serveSubscription(subscription({ plan: "basic" }));
    renderApp(api, "/subscription?payment_intent=pi_1&redirect_status=succeeded");
    expect(await screen.findByTestId("subscription-status")).toHaveTextContent("Active");
    await waitFor(() => expect(screen.queryByText("Payment received — starting your subscription…")).not.toBeInTheDocument());
    expect(api.requestsTo("GET", "/api/payment/user/subscription").length).toBeGreaterThanOrEqual(2);
  });
});

describe("in Chinese", () => {
  it("the plan, its renewal, the allotment and the auto top-up read in Chinese", async () => {
    window.localStorage.setItem(LANG_STORAGE_KEY, "zh");
    const sub = subscription({ plan: "premium" });
    serveSubscription(sub);
    const expiry = inDays(40);
    api.on("GET", "/api/payment/user/lots", {
      json: { items: [lot(1, { source: "allotment", amount: 3000, remaining: 1200, expires_at: expiry })] },
    });
    api.on("GET", "/api/payment/auto-topup", {
      json: autoTopup({ enabled: true, state: "active", this_month: { count: 2, amount: 4000 } }),
    });
    renderApp(api, "/subscription");

    expect(await screen.findByTestId("subscription-status")).toHaveTextContent("有效");
    expect(screen.getByTestId("subscription-plan")).toHaveTextContent("高级版");
    const zhDate = (iso: string | null) => {
      if (iso === null) throw new Error("the fixture's subscription has no period");
      return new Intl.DateTimeFormat("zh-CN", {
        month: "short", day: "numeric", ...(new Date(iso).getFullYear() !== new Date().getFullYear() ? { year: "numeric" } : {}),
      }).format(new Date(iso));
    };
    expect(screen.getByTestId("subscription-renewal")).toHaveTextContent(`${zhDate(sub.current_period_end)} 续订`);
    await waitFor(() => expect(screen.getByTestId("allotment-left")).toHaveTextContent("1,200 个代币"));
    expect(screen.getByTestId("allotment-expiry")).toHaveTextContent(`最早一批于 ${zhDate(expiry)} 过期`);
    expect(await screen.findByTestId("auto-topup-usage")).toHaveTextContent("本月：已充值 2 次");
    expect(screen.getByTestId("auto-topup-state")).toHaveTextContent("开启");
  });
});
