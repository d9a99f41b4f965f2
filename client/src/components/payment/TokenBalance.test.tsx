import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiError, balance, FakeApi, gate } from "../../test/fakeApi";
import { renderWithProviders } from "../../test/render";
import { pricingKeys, type ModelInfo, type UsagePrice } from "../../api/pricing";
import { RepliesLeft } from "./RepliesLeft";
import { TokenBalance } from "./TokenBalance";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
});
afterEach(async () => {
  await api.close();
});

describe("TokenBalance", () => {
  it("shows a loading placeholder, not a number, until the balance arrives", async () => {
    const answer = gate();
    api.on("GET", "/api/payment/user/tokens", async () => {
      await answer.promise;
      return { json: balance(42) };
    });
    renderWithProviders(api, <TokenBalance />);

    expect(screen.getByRole("status")).toHaveTextContent("Loading…");
    expect(screen.queryByTestId("token-balance")).not.toBeInTheDocument();

    answer.open();
    expect(await screen.findByTestId("token-balance")).toHaveTextContent(/^42$/);
    expect(screen.queryByRole("status")).not.toBeInTheDocument();
  });

  it("shows the available balance as a plain number and links to the payment page", async () => {
    api.on("GET", "/api/payment/user/tokens", {
      json: { ...balance(1500), balance: 1503, reserved: 3, available: 1500 },
    });
    renderWithProviders(api, <TokenBalance showTitle />);

    const number = await screen.findByTestId("token-balance");
    expect(number.textContent).toBe("1500");
    const link = screen.getByRole("link");
    expect(link).toHaveAttribute("href", "/payment");
    expect(link).toHaveTextContent("Token balance");
    expect(link).toHaveTextContent("tokens");
    expect(screen.queryByText("Running low — top up")).not.toBeInTheDocument();
  });

  it("hints at topping up when fewer than 5 tokens are available", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(4) });
    renderWithProviders(api, <TokenBalance />);

    expect(await screen.findByTestId("token-balance")).toHaveTextContent("4");
    expect(screen.getByText("Running low — top up")).toBeVisible();
  });

  it("does not hint at exactly 5 tokens", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(5) });
    renderWithProviders(api, <TokenBalance />);

    expect(await screen.findByTestId("token-balance")).toHaveTextContent("5");
    expect(screen.queryByText("Running low — top up")).not.toBeInTheDocument();
  });

  it("compact mode keeps the number, drops the caption and shortens the low hint", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(2) });
    renderWithProviders(api, <TokenBalance compact />);

    const link = await screen.findByRole("link");
    await waitFor(() => expect(within(link).getByTestId("token-balance")).toHaveTextContent("2"));
    expect(screen.queryByText("Running low — top up")).not.toBeInTheDocument();
    expect(screen.queryByText("Token balance")).not.toBeInTheDocument();
    // The short hint is still there for screen readers.
    expect(within(link).getByText("Low balance")).toHaveClass("sr-only");
    expect(within(link).getByText("tokens")).toHaveClass("sr-only");
  });

  it("shows a dash rather than a wrong number when the balance can't be loaded", async () => {
    api.on("GET", "/api/payment/user/tokens", apiError(500, "internal_error", "boom"));
    renderWithProviders(api, <TokenBalance />);

    expect(await screen.findByLabelText("Balance unavailable")).toHaveTextContent("—");
    expect(screen.queryByTestId("token-balance")).not.toBeInTheDocument();
  });
});

describe("replies left", () => {
  const usage: UsagePrice = { kind: "usage", per_1k_input: 500, per_1k_output: 1000, per_1k_cached: 100, minimum: 1 };
  function withModels(items: ModelInfo[], fallback = "mini") {
    api.on("GET", "/api/models", { json: { default: fallback, items, price_version: 1 } });
  }

  it("counts replies on the chosen model at the person's recent average", async () => {
    window.localStorage.setItem("tokenbank.model", "big");
    api.on("GET", "/api/payment/user/tokens", { json: balance(20) });
    withModels([
      { id: "mini", name: "Mini", price: { kind: "per_reply", per_reply: 1 }, recent_average: null },
      { id: "big", name: "Big", price: usage, recent_average: 6.5 },
    ]);
    renderWithProviders(api, <TokenBalance><RepliesLeft /></TokenBalance>);

    const left = await screen.findByTestId("replies-left");
    expect(left).toHaveTextContent("≈ 3 replies left");
    expect(left).toHaveAttribute("title", "At your recent average on Big");
    expect(screen.getByTestId("token-balance").textContent).toBe("20");
  });

  it("uses the default model's per-reply price before there is an average", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(9) });
    withModels([{ id: "mini", name: "Mini", price: { kind: "per_reply", per_reply: 2 }, recent_average: null }]);
    renderWithProviders(api, <TokenBalance><RepliesLeft /></TokenBalance>);
    expect(await screen.findByTestId("replies-left")).toHaveTextContent("≈ 4 replies left");
  });

  it("says one reply in the singular", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(1) });
    withModels([{ id: "mini", name: "Mini", price: { kind: "per_reply", per_reply: 1 }, recent_average: null }]);
    renderWithProviders(api, <TokenBalance><RepliesLeft /></TokenBalance>);
    expect(await screen.findByTestId("replies-left")).toHaveTextContent("≈ 1 reply left");
  });

  it("makes no guess for a usage-priced model nobody has an average on yet", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(50) });
    withModels([{ id: "big", name: "Big", price: usage, recent_average: null }], "big");
    const { queryClient } = renderWithProviders(api, <TokenBalance><RepliesLeft /></TokenBalance>);
    expect(await screen.findByTestId("token-balance")).toHaveTextContent("50");
    await waitFor(() => expect(queryClient.getQueryState(pricingKeys.models)?.status).toBe("success"));
    expect(screen.queryByTestId("replies-left")).not.toBeInTheDocument();
  });
});
