import { screen } from "@testing-library/react";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { linkToken } from "../../api/checkout";
import { apiError, FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { createFakeStripe, paid } from "../../test/fakeStripe";
import { renderApp } from "../../test/render";

beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});
afterEach(() => {
  window.location.hash = "";
});

const checkout = {
  payment_intent_id: "pi_hosted", client_secret: "pi_hosted_secret_1", publishable_key: "pk_test_x",
  stripe_js_url: "https://js.stripe.test/v3/", tier: "starter", tokens: 100, amount: 500,
  currency: "usd", status: "requires_payment_method", return_url: "https://host.test/billing",
};

describe("hosted checkout", () => {
  it("reads the link's token from the fragment only", () => {
    expect(linkToken("#token=abc.def")).toBe("abc.def");
    expect(linkToken("#other=1")).toBeNull();
    expect(linkToken("")).toBeNull();
  });

  it("takes the card with the link's token, and says success only once tokenbank credited", async () => {
    window.location.hash = "#token=link-token";
    let confirms = 0;
    api.on("GET", "/api/v1/checkout", { json: checkout });
    api.on("POST", "/api/v1/checkout/confirm", () => {
      confirms += 1;
      const credited = confirms >= 2;
      return { json: { status: credited ? "succeeded" : "processing", credited,
        tokens_added: credited ? 100 : 0, return_url: checkout.return_url } };
    });
    const fake = createFakeStripe([paid("pi_hosted")]);
    const { user } = renderApp(api, "/checkout", { signedIn: false, stripe: fake.stripe });

    expect(await screen.findByTestId("checkout-pack")).toHaveTextContent("100 tokens for $5.00");
    expect(api.requestsTo("GET", "/api/v1/checkout")[0]?.headers.authorization).toBe("Bearer link-token");
    await user.click(await screen.findByTestId("pay-button"));
    expect(await screen.findByTestId("payment-success", {}, { timeout: 5000 })).toHaveTextContent(
      "100 tokens were added to your account.",
    );
    expect(confirms).toBe(2);
    expect(screen.getByRole("link", { name: "Back to the app" })).toHaveAttribute("href", checkout.return_url);
  });

  it("explains a bad or missing link", async () => {
    api.on("GET", "/api/v1/checkout", apiError(401, "invalid_checkout_token", "x"));
    window.location.hash = "#token=expired";
    renderApp(api, "/checkout", { signedIn: false });
    expect(await screen.findByTestId("payment-error")).toHaveTextContent("invalid or has expired");
  });
});
