import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Transaction } from "../../api/types";
import { adminUser, asAdmin, entry } from "../../test/adminFixtures";
import { apiError, FakeApi, now, withDefaults } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

// The app loads the admin page (and Recharts) lazily; load it once up front so the
// first test does not spend its wait on the import.
beforeAll(async () => {
  await import("../../pages/admin");
});

let api: FakeApi;
/** The user's account as the fake server holds it; a grant changes it. */
let ledger: { balance: number; entries: Transaction[] };

beforeEach(async () => {
  api = await FakeApi.start();
  asAdmin(withDefaults(api));
  ledger = { balance: 10, entries: [entry(1, "grant", 10, 10, "Welcome bonus")] };
  api.on("GET", "/api/admin/users/7", () => ({
    json: {
      user: adminUser(7, "ada", ledger.balance),
      balance: { user_id: 7, balance: ledger.balance, reserved: 0, available: ledger.balance, created_at: now, updated_at: now },
      transactions: ledger.entries,
      next_before: null,
      payments: [],
    },
  }));
});
afterEach(async () => {
  await api.close();
});

async function openUser() {
  const view = renderApp(api, "/admin/users/7");
  await screen.findByRole("heading", { name: "ada" });
  return view;
}

describe("grant form", () => {
  it("requires a reason and a whole non-zero amount before anything is sent", async () => {
    const { user } = await openUser();
    await user.type(screen.getByTestId("admin-grant-amount"), "25");
    await user.click(screen.getByTestId("admin-grant-submit"));

    expect(screen.getByText("A reason is required.")).toBeInTheDocument();
    const reason = screen.getByLabelText("Reason");
    expect(reason).toHaveAttribute("aria-invalid", "true");
    expect(reason).toHaveFocus();
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();

    await user.type(reason, "ok");
    await user.click(screen.getByTestId("admin-grant-submit"));
    expect(screen.getByText("Write a reason of 3 to 500 characters.")).toBeInTheDocument();

    await user.clear(screen.getByTestId("admin-grant-amount"));
    await user.type(screen.getByTestId("admin-grant-amount"), "0");
    await user.type(reason, "kay then");
    await user.click(screen.getByTestId("admin-grant-submit"));
    expect(screen.getByText(/Enter a whole number other than 0/)).toBeInTheDocument();
    expect(screen.getByLabelText("Tokens (+ or −)")).toHaveFocus();
    expect(api.requestsTo("POST", "/api/admin/users/7/tokens")).toHaveLength(0);
  });

  it("shows the server's refusal in words and changes nothing", async () => {
    api.on("POST", "/api/admin/users/7/tokens", apiError(402, "insufficient_tokens", "This needs 50 token(s); 10 available.", { balance: 10, required: 50 }));
    const { user } = await openUser();
    await user.type(screen.getByTestId("admin-grant-amount"), "-50");
    await user.type(screen.getByTestId("admin-grant-reason"), "duplicate purchase credited by hand");
    await user.click(screen.getByTestId("admin-grant-submit"));

    const dialog = await screen.findByRole("alertdialog", { name: "Take 50 tokens away from ada?" });
    expect(dialog).toHaveTextContent("duplicate purchase credited by hand");
    await user.click(within(dialog).getByRole("button", { name: "Yes, −50 tokens" }));

    expect(await screen.findByTestId("admin-grant-error")).toHaveTextContent(
      "That would overdraw the account: only 10 tokens are available.",
    );
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    // The form keeps what was typed so the admin can fix the amount.
    expect(screen.getByTestId("admin-grant-amount")).toHaveValue("-50");
    expect(screen.getByTestId("admin-user-available")).toHaveTextContent("10");
  });

  it("cancelling the confirmation sends nothing", async () => {
    const { user } = await openUser();
    await user.type(screen.getByTestId("admin-grant-amount"), "5");
    await user.type(screen.getByTestId("admin-grant-reason"), "goodwill");
    await user.click(screen.getByTestId("admin-grant-submit"));
    await screen.findByRole("alertdialog");
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/admin/users/7/tokens")).toHaveLength(0);
  });

  it("on success refreshes the balance and the ledger and clears the form", async () => {
    api.on("POST", "/api/admin/users/7/tokens", (request) => {
      const body = request.body as { amount: number; reason: string };
      ledger.balance += body.amount;
      const grant = entry(2, "grant", body.amount, ledger.balance, body.reason);
      ledger.entries = [grant, ...ledger.entries];
      return {
        json: {
          transaction: grant,
          balance: { user_id: 7, balance: ledger.balance, reserved: 0, available: ledger.balance, created_at: now, updated_at: now },
        },
      };
    });
    const { user } = await openUser();
    expect(screen.getAllByTestId("admin-ledger-row")).toHaveLength(1);
    const detailLoads = api.requestsTo("GET", "/api/admin/users/7").length;

    await user.type(screen.getByTestId("admin-grant-amount"), "25");
    await user.type(screen.getByTestId("admin-grant-reason"), "support ticket 42");
    await user.click(screen.getByTestId("admin-grant-submit"));
    const dialog = await screen.findByRole("alertdialog", { name: "Grant 25 tokens to ada?" });
    await user.click(within(dialog).getByRole("button", { name: "Yes, +25 tokens" }));

    expect(await screen.findByTestId("admin-grant-success")).toHaveTextContent("Granted 25 tokens. Available now: 35.");
    expect(api.requestsTo("POST", "/api/admin/users/7/tokens")[0]?.body).toEqual({ amount: 25, reason: "support ticket 42" });
    // A key per confirmed grant, so a retried send cannot grant twice.
    expect(api.requestsTo("POST", "/api/admin/users/7/tokens")[0]?.headers["idempotency-key"]).toMatch(/^[0-9a-f-]{32,36}$/);
    await waitFor(() => expect(screen.getAllByTestId("admin-ledger-row")).toHaveLength(2));
    const newest = screen.getAllByTestId("admin-ledger-row")[0]!;
    expect(newest).toHaveTextContent("Bonus");
    expect(newest).toHaveTextContent("support ticket 42");
    expect(newest).toHaveTextContent("+25");
    expect(screen.getByTestId("admin-user-available")).toHaveTextContent("35");
    expect(api.requestsTo("GET", "/api/admin/users/7").length).toBeGreaterThan(detailLoads);
    expect(screen.getByTestId("admin-grant-amount")).toHaveValue("");
    expect(screen.getByTestId("admin-grant-reason")).toHaveValue("");
  });
});
