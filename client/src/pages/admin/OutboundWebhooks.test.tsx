import { screen, waitFor, within } from "@testing-library/react";
import { beforeAll, describe, expect, it } from "vitest";
import type { WebhookDelivery, WebhookEndpoint } from "../../api/outboundWebhooks";
import { asAdmin } from "../../test/adminFixtures";
import { FakeApi, fakeApiPerTest, now } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = asAdmin(started).on("GET", "/api/admin/webhooks", () => ({ json: [] }));
});

function endpoint(id: number, url: string): WebhookEndpoint {
  return {
    id, url, enabled_events: ["purchase.succeeded"], description: null, enabled: true,
    created_at: now, secret_prefix: "whsec_abcd",
  };
}

function delivery(id: number, overrides: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    id, endpoint_id: 1, event_id: `evt_${id}`, event_type: "purchase.succeeded", status: "dead",
    attempts: 13, next_attempt_at: null, last_status_code: 500, last_error: "HTTP 500",
    created_at: now, delivered_at: null, payload: "{}",
    log: [{ attempt: 13, started_at: now, duration_ms: 12, status_code: 500, error: "HTTP 500" }],
    ...overrides,
  };
}

describe("Events we send", () => {
  it("adds an endpoint, shows its secret once, and removes it", async () => {
    let endpoints: WebhookEndpoint[] = [];
    api.on("GET", "/api/admin/webhook-endpoints", () => ({ json: { items: endpoints, event_types: [] } }));
    api.on("GET", "/api/admin/webhook-deliveries", () => ({ json: { items: [], next_before: null } }));
    api.on("POST", "/api/admin/webhook-endpoints", (request) => {
      const body = request.body as { url: string };
      endpoints = [endpoint(4, body.url)];
      return { status: 201, json: { endpoint: endpoints[0], secret: "whsec_the-secret" } };
    });
    api.on("DELETE", "/api/admin/webhook-endpoints/4", () => {
      endpoints = [];
      return { status: 204 };
    });
    const { user } = renderApp(api, "/admin/webhooks");

    expect(await screen.findByTestId("outbound-endpoints")).toHaveTextContent("No endpoints yet.");
    await user.type(screen.getByTestId("outbound-url"), "https://crm.example.com/hooks");
    await user.clear(screen.getByTestId("outbound-events"));
    await user.type(screen.getByTestId("outbound-events"), "purchase.succeeded, purchase.refunded");
    await user.click(screen.getByTestId("outbound-create"));

    expect(await screen.findByTestId("outbound-secret-value")).toHaveTextContent("whsec_the-secret");
    expect(api.requestsTo("POST", "/api/admin/webhook-endpoints")[0]?.body).toEqual({
      url: "https://crm.example.com/hooks", enabled_events: ["purchase.succeeded", "purchase.refunded"], enabled: true,
    });
    const row = await screen.findByTestId("outbound-endpoint-4");
    expect(row).not.toHaveTextContent("whsec_the-secret");
    await user.click(within(row).getByRole("button", { name: "Remove endpoint https://crm.example.com/hooks" }));
    await waitFor(() => expect(screen.getByTestId("outbound-endpoints")).toHaveTextContent("No endpoints yet."));
  });

  it("rolls an endpoint's secret: asks how long the old one keeps signing, shows the new one once", async () => {
    const until = "2030-01-02T03:04:00Z";
    let endpoints: WebhookEndpoint[] = [endpoint(4, "https://crm.example.com/hooks")];
    api.on("GET", "/api/admin/webhook-endpoints", () => ({ json: { items: endpoints, event_types: [] } }));
    api.on("GET", "/api/admin/webhook-deliveries", () => ({ json: { items: [], next_before: null } }));
    api.on("POST", "/api/admin/webhook-endpoints/4/roll-secret", () => {
      endpoints = [{ ...endpoint(4, "https://crm.example.com/hooks"), secret_prefix: "whsec_newx", previous_secret_expires_at: until }];
      return { json: { endpoint: endpoints[0], secret: "whsec_newx-the-new-one", previous_secret_expires_at: until } };
    });
    const { user } = renderApp(api, "/admin/webhooks");

    const row = await screen.findByTestId("outbound-endpoint-4");
    expect(screen.queryByTestId("outbound-previous-signs")).not.toBeInTheDocument();
    await user.click(within(row).getByRole("button", { name: "Roll the signing secret of https://crm.example.com/hooks" }));
    const dialog = await screen.findByRole("alertdialog");
    expect(dialog).toHaveTextContent("keeps signing beside it until it expires");
    const overlap = within(dialog).getByTestId("outbound-roll-overlap");
    expect(overlap).toHaveValue("24");
    expect(within(overlap).getAllByRole("option").map((o) => o.textContent)).toEqual([
      "Now", "In 1 hour", "In 24 hours", "In 3 days", "In 7 days",
    ]);
    await user.selectOptions(overlap, "72");
    await user.click(within(dialog).getByRole("button", { name: "Roll secret" }));

    expect(await screen.findByTestId("outbound-secret-value")).toHaveTextContent("whsec_newx-the-new-one");
    expect(screen.getByTestId("outbound-secret")).toHaveTextContent("The endpoint's new signing secret");
    expect(screen.getByTestId("outbound-previous-until")).toHaveTextContent("The previous secret keeps signing beside it until");
    expect(api.requestsTo("POST", "/api/admin/webhook-endpoints/4/roll-secret")[0]?.body).toEqual({ expires_in_hours: 72 });
    expect(screen.queryByRole("alertdialog")).not.toBeInTheDocument();
    expect(await screen.findByTestId("outbound-previous-signs")).toHaveTextContent("Previous secret still signs until");
    expect(screen.getByTestId("outbound-endpoint-4")).not.toHaveTextContent("whsec_newx-the-new-one");
  });

  it("lists recent deliveries and retries a dead one", async () => {
    let current = delivery(9);
    api.on("GET", "/api/admin/webhook-endpoints", () => ({ json: { items: [endpoint(1, "https://a.example/h")], event_types: [] } }));
    api.on("GET", "/api/admin/webhook-deliveries", () => ({ json: { items: [current], next_before: null } }));
    api.on("POST", "/api/admin/webhook-deliveries/9/retry", () => {
      current = delivery(9, { status: "delivered", attempts: 1, last_status_code: 200, last_error: null });
      return { json: current };
    });
    const { user } = renderApp(api, "/admin/webhooks");

    const item = await screen.findByTestId("outbound-delivery");
    expect(item).toHaveTextContent("purchase.succeeded");
    expect(item).toHaveTextContent("Gave up");
    expect(item).toHaveTextContent("13 attempts");
    expect(item).toHaveTextContent("HTTP 500");
    await user.click(within(item).getByTestId("outbound-retry"));
    await waitFor(() => expect(screen.getByTestId("outbound-delivery")).toHaveTextContent("Delivered"));
    expect(api.requestsTo("POST", "/api/admin/webhook-deliveries/9/retry")).toHaveLength(1);
    expect(screen.queryByTestId("outbound-retry")).not.toBeInTheDocument();
  });
});
