import { screen, within } from "@testing-library/react";
import { beforeAll, describe, expect, it } from "vitest";
import { adminUser, asAdmin } from "../../test/adminFixtures";
import { inDays, lot, subscription } from "../../test/billingFixtures";
import { FakeApi, fakeApiPerTest, now } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = asAdmin(started).on("GET", "/api/admin/users/8", {
    json: {
      user: adminUser(8, "grace", 140),
      balance: { user_id: 8, balance: 140, reserved: 0, available: 140, created_at: now, updated_at: now },
      transactions: [],
      next_before: null,
      payments: [],
    },
  });
});

describe("admin user page: lots and subscription", () => {
  it("shows the user's subscription state and every lot with its expiry", async () => {
    const sub = subscription({ plan: "premium", status: "past_due", scheduled_plan: "basic" });
    api.on("GET", "/api/admin/users/8/subscription", { json: { subscription: sub } });
    api.on("GET", "/api/admin/users/8/lots", {
      json: {
        items: [
          lot(2, { source: "allotment", amount: 3000, remaining: 40, expires_at: inDays(10) }),
          lot(1, { source: "purchase", amount: 100, remaining: 100 }),
        ],
      },
    });
    renderApp(api, "/admin/users/8");

    const card = await screen.findByTestId("admin-user-subscription");
    expect(await within(card).findByText("Premium")).toBeInTheDocument();
    expect(within(card).getByTestId("subscription-status")).toHaveTextContent("Payment failed");
    expect(card).toHaveTextContent("Switches to Basic on");
    expect(card).toHaveTextContent("sub_1");

    const lots = screen.getByTestId("admin-user-lots");
    const rows = await within(lots).findAllByTestId("admin-lot-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("Plan");
    expect(rows[0]).toHaveTextContent("40 of 3,000");
    expect(within(rows[0]!).getByTestId("lot-expiry")).toHaveTextContent(/^40 tokens expire on /);
    expect(within(rows[1]!).getByTestId("lot-expiry")).toHaveTextContent("Never expires");
  });

  it("says when the user has no subscription and no lots", async () => {
    api.on("GET", "/api/admin/users/8/subscription", { json: { subscription: null } });
    api.on("GET", "/api/admin/users/8/lots", { json: { items: [] } });
    renderApp(api, "/admin/users/8");

    expect(await screen.findByText("No subscription.")).toBeInTheDocument();
    expect(await within(screen.getByTestId("admin-user-lots")).findByText("No tokens yet.")).toBeInTheDocument();
  });
});
