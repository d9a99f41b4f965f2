import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { adminUser, asAdmin, busyStats, emptyStats, payment, webhookEvent } from "../../test/adminFixtures";
import { apiError, FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

// The app loads the admin page (and Recharts) lazily; load it once up front so the
// first test does not spend its wait on the import.
beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});
afterEach(() => {
  vi.unstubAllGlobals();
});

/** A window at least `width` px wide, as far as CSS media queries go. */
function wideWindow(width: number) {
  vi.stubGlobal("matchMedia", (query: string) => {
    const min = /min-width:\s*(\d+)px/.exec(query);
    const max = /max-width:\s*(\d+)px/.exec(query);
    const matches = (min ? width >= Number(min[1]) : true) && (max ? width <= Number(max[1]) : true);
    return { matches, media: query, addEventListener: () => {}, removeEventListener: () => {} };
  });
}

describe("admin access", () => {
  it("is for admins only", async () => {
    renderApp(api, "/admin");
    expect(await screen.findByTestId("admin-forbidden")).toHaveTextContent("admins only");
    expect(screen.queryByTestId("nav-admin")).not.toBeInTheDocument();
    expect(api.requestsTo("GET", "/api/admin/stats")).toHaveLength(0);
  });

  it("sends signed-out visitors to sign in", async () => {
    const { location } = renderApp(api, "/admin/users", { signedIn: false });
    expect(await screen.findByRole("button", { name: "Sign in" })).toBeInTheDocument();
    expect(location.history?.at(-1)).toBe("/login");
  });
});

describe("overview", () => {
  it("charts sales, usage, revenue and top spenders with headline numbers", async () => {
    asAdmin(api).on("GET", "/api/admin/stats", { json: busyStats });
    renderApp(api, "/admin");

    expect(await screen.findByTestId("admin-stat-tokens-sold")).toHaveTextContent("600");
    expect(screen.getByTestId("admin-stat-tokens-used")).toHaveTextContent("127");
    expect(screen.getByTestId("admin-stat-revenue")).toHaveTextContent("$25.00");
    expect(screen.getByTestId("nav-admin")).toHaveAttribute("href", "/admin");

    const daily = screen.getByTestId("admin-chart-daily");
    expect(within(daily).getByRole("figure", { name: "Tokens sold vs used per day" })).toHaveAccessibleDescription(
      "Last 30 days: 600 tokens sold, 127 tokens used.",
    );
    await waitFor(() => expect(daily.querySelectorAll(".recharts-bar-rectangle").length).toBeGreaterThan(0));
    expect(daily.querySelector("svg")).not.toBeNull();
    expect(within(daily).queryByTestId("chart-empty")).not.toBeInTheDocument();

    const revenue = screen.getByTestId("admin-chart-revenue");
    expect(revenue).toHaveTextContent("Last 30 days: $25.00 in total.");
    await waitFor(() => expect(revenue.querySelectorAll(".recharts-bar-rectangle").length).toBeGreaterThan(0));

    const top = screen.getByTestId("admin-chart-top-spenders");
    expect(top).toHaveTextContent("ada used the most (90 tokens)");
    await waitFor(() => expect(within(top).getByText("grace")).toBeInTheDocument());
    expect(api.requestsTo("GET", "/api/admin/stats")[0]?.query.get("days")).toBe("30");
  });

  it("says so when there is nothing to chart, and asks again for another period", async () => {
    asAdmin(api).on("GET", "/api/admin/stats", (request) => ({
      json: { ...emptyStats, days: Number(request.query.get("days")) },
    }));
    const { user } = renderApp(api, "/admin");

    const daily = await screen.findByTestId("admin-chart-daily");
    expect(daily).toHaveTextContent("No tokens were sold or used in the last 30 days.");
    expect(screen.getByTestId("admin-chart-revenue")).toHaveTextContent("No revenue in the last 30 days.");
    expect(screen.getByTestId("admin-chart-top-spenders")).toHaveTextContent("Nobody has used tokens in the last 30 days.");
    expect(daily.querySelector("svg.recharts-surface")).toBeNull();
    expect(screen.getByTestId("admin-stat-tokens-sold")).toHaveTextContent("0");

    await user.click(screen.getByRole("button", { name: "7 days" }));
    expect(await screen.findByText("No tokens were sold or used in the last 7 days.")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "7 days" })).toHaveAttribute("aria-pressed", "true");
  });
});

describe("refunds", () => {
  it("lists refunded replies by reason and by model for the chosen period", async () => {
    asAdmin(api).on("GET", "/api/admin/refunds", (request) => ({
      json: request.query.get("days") === "7"
        ? { days: 7, by_reason: [], by_model: [] }
        : {
            days: 30,
            by_reason: [{ reason: "wrong", count: 3, tokens: 12 }, { reason: "harmful", count: 1, tokens: 2 }],
            by_model: [{ model: "gpt-4o-mini", count: 3, tokens: 12 }, { model: null, count: 1, tokens: 2 }],
          },
    }));
    const { user } = renderApp(api, "/admin");

    const byReason = await screen.findByTestId("admin-refunds-by-reason");
    const rows = within(byReason).getAllByRole("row").slice(1).map((r) => r.textContent);
    expect(rows).toEqual(["Wrong312", "Harmful12"]);
    const byModel = screen.getByTestId("admin-refunds-by-model");
    expect(within(byModel).getByRole("rowheader", { name: "gpt-4o-mini" })).toBeInTheDocument();
    expect(within(byModel).getByRole("rowheader", { name: "(not recorded)" })).toBeInTheDocument();
    expect(api.requestsTo("GET", "/api/admin/refunds")[0]?.query.get("days")).toBe("30");

    await user.click(screen.getByRole("button", { name: "7 days" }));
    expect(await screen.findByText("No replies were refunded in the last 7 days.")).toBeInTheDocument();
  });
});

describe("users", () => {
  it("searches and opens a user", async () => {
    asAdmin(api)
      .on("GET", "/api/admin/users", (request) => ({
        json: request.query.get("query") === "gra"
          ? [adminUser(8, "grace", 40, 37)]
          : [adminUser(7, "ada", 12, 90), adminUser(8, "grace", 40, 37)],
      }))
      .on("GET", "/api/admin/users/8", {
        json: {
          user: adminUser(8, "grace", 40, 37),
          balance: { user_id: 8, balance: 40, reserved: 0, available: 40, created_at: "2025-06-01T12:00:00Z", updated_at: "2025-06-01T12:00:00Z" },
          transactions: [],
          next_before: null,
          payments: [payment(3, { user_id: 8, username: "grace" })],
        },
      });
    const { user } = renderApp(api, "/admin/users");

    const table = await screen.findByTestId("admin-users");
    expect(within(table).getAllByTestId("admin-user-row")).toHaveLength(2);
    expect(within(table).getAllByTestId("admin-user-row")[0]).toHaveTextContent("ada");

    await user.type(screen.getByRole("searchbox", { name: "Search users" }), "gra");
    await waitFor(() => expect(screen.getAllByTestId("admin-user-row")).toHaveLength(1));
    expect(api.requestsTo("GET", "/api/admin/users").at(-1)?.query.get("query")).toBe("gra");

    await user.click(screen.getAllByTestId("admin-user-row")[0]!);
    expect(await screen.findByRole("heading", { name: "grace" })).toBeInTheDocument();
    expect(screen.getByTestId("admin-user-available")).toHaveTextContent("40");
    expect(screen.getByTestId("admin-user-payments")).toHaveTextContent("Starter · 100 tokens");
    expect(screen.getByText("No transactions yet.")).toBeInTheDocument();
  });
});

describe("payments", () => {
  it("filters by status and shows refunds, disputes and the Stripe link", async () => {
    asAdmin(api).on("GET", "/api/admin/payments", (request) => ({
      json: request.query.get("status") === "failed"
        ? [payment(9, { status: "failed", tokens_credited: 0, last_error_code: "insufficient_funds" })]
        : [
            payment(2, {
              amount_refunded_cents: 500, reversed_tokens: 100, dispute_status: "lost",
              stripe_dashboard_url: "https://dashboard.stripe.com/test/payments/pi_2",
            }),
            payment(1),
          ],
    }));
    const { user } = renderApp(api, "/admin/payments");

    const table = await screen.findByTestId("admin-payments");
    const rows = within(table).getAllByTestId("admin-payment-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("Refunded $5.00");
    expect(rows[0]).toHaveTextContent("100 tokens taken back");
    expect(rows[0]).toHaveTextContent("Lost");
    expect(within(rows[0]!).getAllByRole("link", { name: /Open in Stripe/ })[0]).toHaveAttribute(
      "href", "https://dashboard.stripe.com/test/payments/pi_2",
    );
    expect(within(rows[1]!).queryByRole("link", { name: /Open in Stripe/ })).not.toBeInTheDocument();

    await user.selectOptions(screen.getByLabelText("Status"), "failed");
    await waitFor(() => expect(screen.getAllByTestId("admin-payment-row")).toHaveLength(1));
    expect(screen.getByTestId("admin-payment-row")).toHaveTextContent("Your card has insufficient funds");
    expect(api.requestsTo("GET", "/api/admin/payments").at(-1)?.query.get("status")).toBe("failed");
  });
});

describe("webhook inbox", () => {
  it("filters, and processes a failed event again", async () => {
    let processed = false;
    asAdmin(api)
      .on("GET", "/api/admin/webhooks", (request) => {
        const all = [
          webhookEvent("evt_failed", processed ? "handled" : "failed", { attempts: 3, last_error: processed ? null : "stripe_unavailable: timeout" }),
          webhookEvent("evt_ok", "handled"),
        ];
        const status = request.query.get("status");
        return { json: status ? all.filter((e) => e.status === status) : all };
      })
      .on("POST", "/api/admin/webhooks/:id/process", () => {
        processed = true;
        return { json: { id: "evt_failed", status: "handled" } };
      });
    const { user } = renderApp(api, "/admin/webhooks");

    const inbox = await screen.findByTestId("admin-webhooks");
    expect(within(inbox).getAllByTestId("admin-webhook-row")).toHaveLength(2);
    expect(inbox).toHaveTextContent("3 attempts");
    expect(inbox).toHaveTextContent("stripe_unavailable: timeout");
    // Only unfinished events offer to run again.
    expect(within(inbox).getAllByRole("button", { name: /Process event .* again/ })).toHaveLength(1);

    await user.click(screen.getByRole("button", { name: "Failed, will retry" }));
    await waitFor(() => expect(screen.getAllByTestId("admin-webhook-row")).toHaveLength(1));
    expect(api.requestsTo("GET", "/api/admin/webhooks").at(-1)?.query.get("status")).toBe("failed");

    await user.click(screen.getByRole("button", { name: "All" }));
    await waitFor(() => expect(screen.getAllByTestId("admin-webhook-row")).toHaveLength(2));
    await user.click(screen.getByRole("button", { name: "Process event evt_failed again" }));
    expect(await screen.findByText("Done — now Handled.")).toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/admin/webhooks/evt_failed/process")).toHaveLength(1);
    await waitFor(() => expect(screen.queryByRole("button", { name: /Process event .* again/ })).not.toBeInTheDocument());
  });

  it("shows dead letters and when a failed event is tried next, and processes a dead letter again", async () => {
    let processed = false;
    asAdmin(api)
      .on("GET", "/api/admin/webhooks", () => ({
        json: [
          webhookEvent("evt_dead", processed ? "handled" : "dead", { attempts: 10, last_error: processed ? null : "stripe_unavailable: down" }),
          webhookEvent("evt_retry", "failed", { attempts: 2, next_attempt_at: "2030-01-02T03:04:00Z" }),
          webhookEvent("evt_never", "unprocessable", { attempts: 1, last_error: "payment_not_found: No such payment." }),
        ],
      }))
      .on("POST", "/api/admin/webhooks/:id/process", () => {
        processed = true;
        return { json: { id: "evt_dead", status: "handled", payment_intent_id: "pi_1" } };
      });
    const { user } = renderApp(api, "/admin/webhooks");

    const inbox = await screen.findByTestId("admin-webhooks");
    expect(inbox).toHaveTextContent("Gave up");
    expect(inbox).toHaveTextContent("Can never apply");
    expect(within(inbox).getByTestId("admin-webhook-next-attempt")).toHaveTextContent("Next attempt");
    // The dead letter and the waiting retry can run now; an event that can never apply cannot.
    expect(within(inbox).getByRole("button", { name: "Process event evt_dead again" })).toBeInTheDocument();
    expect(within(inbox).getByRole("button", { name: "Process event evt_retry again" })).toBeInTheDocument();
    expect(within(inbox).queryByRole("button", { name: "Process event evt_never again" })).not.toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Process event evt_dead again" }));
    expect(await screen.findByText("Done — now Handled.")).toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/admin/webhooks/evt_dead/process")).toHaveLength(1);
  });

  it("explains when the server cannot process events again", async () => {
    asAdmin(api)
      .on("GET", "/api/admin/webhooks", { json: [webhookEvent("evt_stuck", "received")] })
      .on("POST", "/api/admin/webhooks/:id/process", apiError(405, "method_not_allowed", "Method Not Allowed"));
    const { user } = renderApp(api, "/admin/webhooks");
    await user.click(await screen.findByRole("button", { name: "Process event evt_stuck again" }));
    expect(await screen.findByText("This server can't process events again yet.")).toBeInTheDocument();
  });

  it("says so when Stripe no longer knows the event", async () => {
    asAdmin(api)
      .on("GET", "/api/admin/webhooks", { json: [webhookEvent("evt_gone", "failed")] })
      .on("POST", "/api/admin/webhooks/:id/process", apiError(404, "payment_not_found", "No such event: evt_gone"));
    const { user } = renderApp(api, "/admin/webhooks");
    await user.click(await screen.findByRole("button", { name: "Process event evt_gone again" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Stripe doesn't know this event (or its payment) any more.");
  });

  it("is a table on wide screens", async () => {
    wideWindow(1280);
    asAdmin(api).on("GET", "/api/admin/webhooks", {
      json: [webhookEvent("evt_failed", "failed", { attempts: 2, last_error: "boom" }), webhookEvent("evt_ok", "handled")],
    });
    renderApp(api, "/admin/webhooks");
    const table = await screen.findByRole("table", { name: "Webhook events from Stripe, newest first" });
    const rows = within(table).getAllByTestId("admin-webhook-row");
    expect(rows).toHaveLength(2);
    expect(within(rows[0]!).getAllByRole("cell")[2]).toHaveTextContent("boom");
    expect(within(rows[0]!).getByRole("button", { name: "Process event evt_failed again" })).toBeInTheDocument();
    expect(within(rows[1]!).queryByRole("button")).not.toBeInTheDocument();
  });
});
