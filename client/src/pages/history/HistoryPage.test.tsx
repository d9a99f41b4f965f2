import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { FakeApi, now, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
}, 499);

function tx(id: number, type: string, amount: number, balanceAfter: number, pi: string | null = null) {
  return {
    id, transaction_type: type, amount, balance_after: balanceAfter, description: `entry ${id}`,
    stripe_payment_intent_id: pi, created_at: new Date().toISOString(),
  };
}

describe("history", () => {
  it("lists entries in words with signed amounts, loads older pages and opens a payment", async () => {
    api.on("GET", "/api/payment/user/transactions", (request) =>
      request.query.get("before") === "3"
        ? { json: { items: [tx(2, "grant", 10, 10), tx(1, "purchase_reversal", -100, 0, "pi_old")], next_before: null } }
        : { json: { items: [tx(5, "deduction", -1, 499), tx(4, "purchase", 500, 500, "pi_new"), tx(3, "refund", 1, 0)], next_before: 3 } },
    );
    api.on("GET", "/api/payment/payments/:id", (_request, params) => ({
      json: {
        id: 9, payment_intent_id: params.id, status: "succeeded", tier: "standard", tokens: 500, amount: 2000,
        currency: "usd", tokens_credited: 500, reversed_tokens: 0, amount_refunded: 0, dispute_status: null,
        last_error_code: null, created_at: now, updated_at: now,
      },
    }));
    const { user } = renderApp(api, "/history");

    let rows = await screen.findAllByTestId("transaction-row");
    expect(rows.map((row) => within(row).getAllByRole("cell")[1]?.textContent)).toEqual([
      expect.stringContaining("AI reply"),
      expect.stringContaining("Purchase"),
      expect.stringContaining("Refund"),
    ]);
    expect(within(rows[0]!).getByText("−1")).toHaveClass("text-rose-700");
    expect(within(rows[1]!).getByText("+500")).toHaveClass("text-emerald-700");
    expect(screen.getByRole("img", { name: /500 tokens bought, 0 tokens used/ })).toBeInTheDocument();
    expect(api.requestsTo("GET", "/api/payment/user/transactions")[0]?.query.get("before")).toBeNull();

    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByText("Payment refunded")).toBeInTheDocument();
    rows = screen.getAllByTestId("transaction-row");
    expect(rows).toHaveLength(5);
    expect(within(rows[3]!).getByText("Bonus")).toBeInTheDocument();
    expect(screen.getByText("That's everything.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Load more" })).not.toBeInTheDocument();

    await user.click(within(rows[1]!).getByRole("link", { name: "View payment" }));
    const drawer = await screen.findByRole("dialog", { name: "Payment details" });
    expect(await within(drawer).findByText("Tokens credited")).toBeInTheDocument();
    expect(drawer).toHaveTextContent("$20.00");
    expect(drawer).toHaveTextContent("pi_new");
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
  });

  it("has a friendly empty state", async () => {
    api.on("GET", "/api/payment/user/transactions", { json: { items: [], next_before: null } });
    renderApp(api, "/history");
    expect(await screen.findByText(/No transactions yet/)).toBeInTheDocument();
  });
});
