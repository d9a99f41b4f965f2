import { screen, waitFor, within } from "@testing-library/react";
import { beforeAll, describe, expect, it } from "vitest";
import type { ApiKey } from "../../api/apiKeys";
import { asAdmin } from "../../test/adminFixtures";
import { FakeApi, fakeApiPerTest, now } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

beforeAll(async () => {
  await import("./index");
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = asAdmin(started);
});

function key(id: number, name: string, overrides: Partial<ApiKey> = {}): ApiKey {
  return {
    id, name, prefix: `tbk_abc${id}`, scopes: ["charge", "read"], created_at: now,
    revoked_at: null, rotated_from_id: null, active: true, ...overrides,
  };
}

describe("API keys", () => {
  it("creates a key with the chosen scopes and shows its secret once", async () => {
    let keys: ApiKey[] = [];
    api.on("GET", "/api/admin/api-keys", () => ({ json: { items: keys } }));
    api.on("POST", "/api/admin/api-keys", (request) => {
      const body = request.body as { name: string; scopes: string[] };
      keys = [key(7, body.name, { scopes: body.scopes as ApiKey["scopes"] })];
      return { status: 201, json: { key: keys[0], secret: "tbk_the-secret" } };
    });
    const { user } = renderApp(api, "/admin/api-keys");

    expect(await screen.findByTestId("api-keys")).toHaveTextContent("No API keys yet.");
    await user.type(screen.getByTestId("api-key-name"), "chat backend");
    await user.click(screen.getByTestId("api-key-scope-grant"));
    await user.click(screen.getByTestId("api-key-create"));

    expect(await screen.findByTestId("api-key-secret-value")).toHaveTextContent("tbk_the-secret");
    expect(api.requestsTo("POST", "/api/admin/api-keys")[0]?.body).toEqual({
      name: "chat backend", scopes: ["read", "charge", "grant"],
    });
    const row = await screen.findByTestId("api-key-7");
    expect(row).toHaveTextContent("chat backend");
    expect(row).not.toHaveTextContent("tbk_the-secret");

    await user.click(screen.getByRole("button", { name: "I have stored it" }));
    expect(screen.queryByTestId("api-key-secret")).not.toBeInTheDocument();
  });

  it("revokes after asking, and rotating shows the new secret", async () => {
    let keys = [key(1, "old")];
    api.on("GET", "/api/admin/api-keys", () => ({ json: { items: keys } }));
    api.on("POST", "/api/admin/api-keys/1/revoke", () => {
      keys = [key(1, "old", { active: false, revoked_at: now })];
      return { json: keys[0] };
    });
    api.on("POST", "/api/admin/api-keys/1/rotate", () => {
      keys = [key(2, "old", { rotated_from_id: 1 }), key(1, "old", { active: false, revoked_at: now })];
      return { status: 201, json: { key: keys[0], secret: "tbk_rotated" } };
    });
    const { user } = renderApp(api, "/admin/api-keys");

    await user.click(await screen.findByTestId("api-key-rotate-1"));
    const dialog = await screen.findByRole("alertdialog");
    await user.click(within(dialog).getByRole("button", { name: "Rotate" }));
    expect(await screen.findByTestId("api-key-secret-value")).toHaveTextContent("tbk_rotated");
    await waitFor(() => expect(screen.getByTestId("api-key-1")).toHaveTextContent("Revoked"));
    expect(api.requestsTo("POST", "/api/admin/api-keys/1/revoke")).toHaveLength(0);

    await user.click(await screen.findByTestId("api-key-revoke-2"));
    await user.click(within(await screen.findByRole("alertdialog")).getByRole("button", { name: "Cancel" }));
    expect(api.requestsTo("POST", "/api/admin/api-keys/2/revoke")).toHaveLength(0);
  });
});
