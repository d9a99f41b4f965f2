import { screen } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TOKEN_STORAGE_KEY } from "../../auth/session";
import { apiError, FakeApi, now, withDefaults } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
  withDefaults(api).on("GET", "/api/auth/me", {
    json: { id: 1, username: "ada", email: "ada@example.com", email_verified: false, locale: "en",
            is_admin: false, created_at: now },
  });
});
afterEach(async () => {
  await api.close();
});

const signedIn = {
  access_token: "after-change-token", token_type: "bearer", expires_in: 900,
  user: { id: 1, username: "ada", email: "ada@example.com", email_verified: true, locale: "en" },
};

describe("settings", () => {
  it("changes the password and carries on with the session the change handed back", async () => {
    api.on("POST", "/api/auth/change-password", { json: signedIn });
    const { user } = renderApp(api, "/settings");

    await user.type(await screen.findByLabelText("Current password"), "old-pass-1");
    await user.type(screen.getByLabelText("New password"), "new-pass-22");
    await user.click(screen.getByRole("button", { name: "Change password" }));

    expect(await screen.findByTestId("password-changed")).toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/auth/change-password")[0]?.body).toEqual({
      current_password: "old-pass-1", new_password: "new-pass-22",
    });
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBe("after-change-token");
  });

  it("says when the current password is wrong, without signing out", async () => {
    api.on("POST", "/api/auth/change-password", apiError(400, "wrong_current_password", "no"));
    const { user, location } = renderApp(api, "/settings");

    await user.type(await screen.findByLabelText("Current password"), "guess-pass-1");
    await user.type(screen.getByLabelText("New password"), "new-pass-22");
    await user.click(screen.getByRole("button", { name: "Change password" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("The current password is not right.");
    expect(location.history.at(-1)).toBe("/settings");
  });

  it("signs out everywhere and lands on the sign-in page", async () => {
    api.on("POST", "/api/auth/logout-all", { status: 204 });
    const { user, location } = renderApp(api, "/settings");

    await user.click(await screen.findByTestId("logout-everywhere"));
    expect(await screen.findByLabelText("Username")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/login");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBeNull();
    expect(api.requestsTo("POST", "/api/auth/logout-all")).toHaveLength(1);
  });

  it("reminds an unconfirmed address and sends the link again", async () => {
    api.on("POST", "/api/auth/verify-email/resend", { status: 202, json: { accepted: true } });
    const { user } = renderApp(api, "/chat");

    expect(await screen.findByTestId("verify-email-banner")).toBeInTheDocument();
    await user.click(screen.getByRole("button", { name: "Send it again" }));
    expect(await screen.findByText(/Sent\. Check your inbox\./)).toBeInTheDocument();
  });
});
