import { screen } from "@testing-library/react";
import { afterEach, describe, expect, it } from "vitest";
import { TOKEN_STORAGE_KEY } from "../../auth/session";
import { apiError, FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});
afterEach(() => {
  window.history.replaceState(null, "", "/");
});

describe("emailed links", () => {
  it("confirms the email once and shows the bonus", async () => {
    window.history.replaceState(null, "", "/verify-email?token=tok-123");
    api.on("POST", "/api/auth/verify-email", { json: { verified: true, bonus_tokens: 10 } });
    renderApp(api, "/verify-email", { signedIn: false });

    expect(await screen.findByTestId("verify-email-success")).toHaveTextContent("10 tokens");
    expect(api.requestsTo("POST", "/api/auth/verify-email")).toHaveLength(1);
    expect(api.requestsTo("POST", "/api/auth/verify-email")[0]?.body).toEqual({ token: "tok-123" });
    expect(window.location.search).toBe("");  // the token left the address bar
  });

  it("says so when the link is used or expired", async () => {
    window.history.replaceState(null, "", "/verify-email?token=old");
    api.on("POST", "/api/auth/verify-email", apiError(400, "email_link_invalid", "no"));
    renderApp(api, "/verify-email", { signedIn: false });
    expect(await screen.findByTestId("verify-email-error")).toHaveTextContent(
      "This link is invalid, expired or already used.",
    );
  });

  it("sets a new password from the reset link and signs in", async () => {
    window.history.replaceState(null, "", "/reset-password?token=reset-1");
    api.on("POST", "/api/auth/password-reset/complete", {
      json: { access_token: "reset-session", token_type: "bearer", expires_in: 900,
              user: { id: 1, username: "ada", email: "ada@example.com" } },
    });
    const { user, location } = renderApp(api, "/reset-password", { signedIn: false });

    await user.type(await screen.findByLabelText("New password"), "brand-new-1");
    await user.click(screen.getByRole("button", { name: "Set the new password" }));

    expect(await screen.findByTestId("chat-input")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/chat");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBe("reset-session");
    expect(api.requestsTo("POST", "/api/auth/password-reset/complete")[0]?.body).toEqual({
      token: "reset-1", new_password: "brand-new-1",
    });
  });

  it("asks for a reset link and answers the same whoever asks", async () => {
    api.on("POST", "/api/auth/password-reset", { status: 202, json: { accepted: true } });
    const { user } = renderApp(api, "/forgot-password", { signedIn: false });
    await user.type(await screen.findByLabelText("Email"), "ada@example.com");
    await user.click(screen.getByRole("button", { name: "Send the link" }));
    expect(await screen.findByTestId("reset-link-sent")).toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/auth/password-reset")[0]?.body).toEqual({
      email: "ada@example.com",
    });
  });
});
