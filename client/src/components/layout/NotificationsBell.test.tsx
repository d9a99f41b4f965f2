import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { AppNotification } from "../../api/billing";
import { FakeApi, fakeApiPerTest, now } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});

function note(id: number, overrides: Partial<AppNotification> = {}): AppNotification {
  return {
    id, kind: "balance_low", title: `Title ${id}`, body: `Body ${id}`, data: {}, created_at: now, read_at: null, ...overrides,
  };
}

/** The server's notifications; POST /read marks the given ids (or all) read. */
function serve(items: AppNotification[]) {
  let list = items;
  const unread = () => list.filter((item) => item.read_at === null).length;
  api.on("GET", "/api/notifications", () => ({ json: { items: list, unread: unread(), next_before: null } }));
  api.on("POST", "/api/notifications/read", (request) => {
    const ids = (request.body as { ids?: number[] } | null)?.ids;
    list = list.map((item) => (!ids || ids.includes(item.id) ? { ...item, read_at: item.read_at ?? now } : item));
    return { json: { unread: unread() } };
  });
}

describe("notifications bell", () => {
  it("shows the unread count, lists notifications and marks one read", async () => {
    serve([
      note(3, { kind: "topup_paused", title: "Automatic top-up paused", body: "Your bank wants to verify it.",
        data: { action_url: "https://pay.example/finish" } }),
      note(2, { title: "Balance low", body: "Under 20 tokens." }),
      note(1, { title: "Renewed", read_at: now }),
    ]);
    const { user } = renderApp(api, "/chat");

    expect(await screen.findByTestId("notifications-unread")).toHaveTextContent("2");
    const bell = screen.getByTestId("notifications-bell");
    expect(bell).toHaveAccessibleName("Notifications, 2 unread");

    await user.click(bell);
    const panel = screen.getByRole("dialog", { name: "Notifications" });
    const items = await within(panel).findAllByTestId("notification");
    expect(items).toHaveLength(3);
    expect(items[0]).toHaveTextContent("Automatic top-up paused");
    expect(items[0]).toHaveAttribute("data-unread", "true");
    expect(within(items[0]!).getByRole("link", { name: "Open" })).toHaveAttribute("href", "https://pay.example/finish");
    expect(items[2]).toHaveAttribute("data-unread", "false");

    await user.click(within(items[1]!).getByRole("button", { name: "Mark as read" }));
    await waitFor(() => expect(screen.getByTestId("notifications-unread")).toHaveTextContent("1"));
    expect(api.requestsTo("POST", "/api/notifications/read")[0]?.body).toEqual({ ids: [2] });
    expect(within(panel).getAllByTestId("notification")[1]).toHaveAttribute("data-unread", "false");
  });

  it("marks everything read and hides the count", async () => {
    serve([note(2), note(1)]);
    const { user } = renderApp(api, "/chat");

    await screen.findByTestId("notifications-unread");
    await user.click(screen.getByTestId("notifications-bell"));
    await user.click(await screen.findByRole("button", { name: "Mark all as read" }));

    await waitFor(() => expect(screen.queryByTestId("notifications-unread")).not.toBeInTheDocument());
    expect(api.requestsTo("POST", "/api/notifications/read")[0]?.body).toEqual({});
    expect(screen.getByTestId("notifications-bell")).toHaveAccessibleName("Notifications");
  });

  it("says so when there is nothing, and closes with Escape", async () => {
    const { user } = renderApp(api, "/chat");
    await user.click(await screen.findByTestId("notifications-bell"));
    expect(await screen.findByText(/Nothing new/)).toBeInTheDocument();
    expect(screen.queryByTestId("notifications-unread")).not.toBeInTheDocument();
    await user.keyboard("{Escape}");
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
  });

  it("asks for the latest when the bell is opened", async () => {
    let count = 0;
    api.on("GET", "/api/notifications", () => {
      count += 1;
      return { json: { items: count > 1 ? [note(9)] : [], unread: count > 1 ? 1 : 0, next_before: null } };
    });
    renderApp(api, "/chat");
    await waitFor(() => expect(count).toBe(1));
    expect(screen.queryByTestId("notifications-unread")).not.toBeInTheDocument();
    // Opening the bell always asks for the latest.
    screen.getByTestId("notifications-bell").click();
    expect(await screen.findByTestId("notifications-unread")).toHaveTextContent("1");
  });
});
