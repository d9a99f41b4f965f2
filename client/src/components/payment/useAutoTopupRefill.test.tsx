import { screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { autoTopup } from "../../test/billingFixtures";
import { FakeApi, balance } from "../../test/fakeApi";
import { renderWithProviders } from "../../test/render";
import { TokenBalance } from "./TokenBalance";
import { TOPUP_POLL_MS, topupDue, useAutoTopupRefill } from "./useAutoTopupRefill";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
});
afterEach(async () => {
  await api.close();
});

function Shell() {
  useAutoTopupRefill();
  return <TokenBalance />;
}

describe("topupDue", () => {
  it("is due only when auto top-up is on, active, and the balance is below its threshold", () => {
    const on = autoTopup({ enabled: true, state: "active", threshold: 20 });
    expect(topupDue(on, 19)).toBe(true);
    expect(topupDue(on, 20)).toBe(false);
    expect(topupDue(autoTopup({ enabled: true, state: "paused", threshold: 20 }), 5)).toBe(false);
    expect(topupDue(autoTopup({ enabled: false, state: "off", threshold: 20 }), 5)).toBe(false);
    expect(topupDue(undefined, 5)).toBe(false);
    expect(topupDue(on, undefined)).toBe(false);
  });
});

describe("useAutoTopupRefill", () => {
  it("asks for the balance again while a top-up is due, and shows the refill", async () => {
    let available = 15;
    api.on("GET", "/api/payment/user/tokens", () => ({ json: balance(available) }));
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup({ enabled: true, state: "active", threshold: 20 }) });
    renderWithProviders(api, <Shell />);
    expect(await screen.findByTestId("token-balance")).toHaveTextContent(/^15$/);

    available = 115; // the webhook credited the top-up
    expect(await screen.findByText(/^115$/, {}, { timeout: TOPUP_POLL_MS * 3 })).toBeInTheDocument();
    const asked = api.requestsTo("GET", "/api/payment/user/tokens").length;
    // Refilled: above the threshold, so the page stops asking.
    await new Promise((resolve) => setTimeout(resolve, TOPUP_POLL_MS + 500));
    expect(api.requestsTo("GET", "/api/payment/user/tokens")).toHaveLength(asked);
  }, 20_000);

  it("does not poll when no top-up is due", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(15) });
    api.on("GET", "/api/payment/auto-topup", { json: autoTopup({ enabled: false, state: "off", threshold: 20 }) });
    renderWithProviders(api, <Shell />);
    expect(await screen.findByTestId("token-balance")).toHaveTextContent(/^15$/);
    await new Promise((resolve) => setTimeout(resolve, TOPUP_POLL_MS + 500));
    expect(api.requestsTo("GET", "/api/payment/user/tokens")).toHaveLength(1);
  }, 20_000);
});
