import { screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { TOKEN_STORAGE_KEY } from "../../auth/session";
import { apiError, balance, FakeApi, fakeApiPerTest, now } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});

const authResult = {
  access_token: "fresh-token",
  token_type: "bearer",
  user: { id: 1, username: "ada", email: "ada@example.com" },
};

describe("sign-up and sign-in", () => {
  it("sends signed-out visitors to /login", async () => {
    const { location } = renderApp(api, "/history", { signedIn: false });
    expect(await screen.findByLabelText("Username")).toBeInTheDocument();
    expect(screen.getByLabelText("Password")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/login");
  });

  it("registers, stores the token and lands on /chat", async () => {
    api.on("POST", "/api/auth/register", { status: 201, json: authResult });
    const { user, location } = renderApp(api, "/register", { signedIn: false });

    await user.type(await screen.findByLabelText("Username"), "ada");
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "correct horse 9");
    await user.click(screen.getByRole("button", { name: "Create account" }));

    expect(await screen.findByTestId("chat-input")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/chat");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBe("fresh-token");
    expect(api.requestsTo("POST", "/api/auth/register")[0]?.body).toEqual({
      username: "ada", email: "ada@example.com", password: "correct horse 9", locale: "en",
    });
    await waitFor(() =>
      expect(api.requestsTo("GET", "/api/payment/user/tokens")[0]?.headers.authorization).toBe("Bearer fresh-token"),
    );
  });

  it("puts a taken username next to the Username field", async () => {
    api.on("POST", "/api/auth/register", apiError(409, "username_taken", "Username already registered"));
    const { user } = renderApp(api, "/register", { signedIn: false });

    await user.type(await screen.findByLabelText("Username"), "ada");
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "correct horse 9");
    await user.click(screen.getByRole("button", { name: "Create account" }));

    const username = screen.getByLabelText("Username");
    expect(await screen.findByText("That username is already taken.")).toBeInTheDocument();
    expect(username).toHaveAttribute("aria-invalid", "true");
    expect(username).toHaveFocus();
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBeNull();
  });

  it("shows the server's field problems from a 422", async () => {
    api.on("POST", "/api/auth/register", {
      status: 422,
      json: {
        error: {
          code: "validation_error",
          message: "email: The email domain does not exist.",
          errors: [
            { loc: ["body", "email"], msg: "Value error, The email domain does not exist.", type: "value_error" },
          ],
        },
      },
    });
    const { user } = renderApp(api, "/register", { signedIn: false });

    await user.type(await screen.findByLabelText("Username"), "ada");
    await user.type(screen.getByLabelText("Email"), "ada@nowhere.invalid");
    await user.type(screen.getByLabelText("Password"), "correct horse 9");
    await user.click(screen.getByRole("button", { name: "Create account" }));

    expect(await screen.findByText("The email domain does not exist.")).toBeInTheDocument();
    expect(screen.getByLabelText("Email")).toHaveAttribute("aria-invalid", "true");
  });

  it("catches a short password before sending anything", async () => {
    const { user } = renderApp(api, "/register", { signedIn: false });

    await user.type(await screen.findByLabelText("Username"), "ada");
    await user.type(screen.getByLabelText("Email"), "ada@example.com");
    await user.type(screen.getByLabelText("Password"), "short");
    await user.click(screen.getByRole("button", { name: "Create account" }));

    expect(screen.getByText("Use at least 8 characters.")).toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/auth/register")).toHaveLength(0);
  });

  it("says so when the credentials are wrong and stays signed out", async () => {
    api.on("POST", "/api/auth/login", apiError(401, "invalid_credentials", "Invalid username or password"));
    const { user, location } = renderApp(api, "/login", { signedIn: false });

    await user.type(await screen.findByLabelText("Username"), "ada");
    await user.type(screen.getByLabelText("Password"), "wrong-password");
    await user.click(screen.getByRole("button", { name: "Sign in" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("Wrong username or password.");
    expect(location.history.at(-1)).toBe("/login");
  });

  it("signs out when the session has ended and cannot be renewed", async () => {
    api.on("GET", "/api/payment/user/tokens", apiError(401, "session_revoked", "This session has ended"));
    api.on("POST", "/api/auth/refresh", apiError(401, "refresh_token_invalid", "Sign in again"));
    const { location } = renderApp(api, "/chat");

    expect(await screen.findByLabelText("Username")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/login");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBeNull();
  });

  it("renews an expired access token once and retries, staying signed in", async () => {
    api.on("GET", "/api/payment/user/tokens", (request) =>
      request.headers.authorization === "Bearer renewed-token"
        ? { json: balance(7) }
        : apiError(401, "invalid_token", "expired"),
    );
    api.on("GET", "/api/auth/me", (request) =>
      request.headers.authorization === "Bearer renewed-token"
        ? { json: { id: 1, username: "ada", email: "ada@example.com", email_verified: true,
                    locale: "en", is_admin: false, created_at: now } }
        : apiError(401, "invalid_token", "expired"),
    );
    api.on("POST", "/api/auth/refresh", { json: { ...authResult, access_token: "renewed-token" } });
    const { location } = renderApp(api, "/chat");

    expect(await screen.findByTestId("token-balance")).toHaveTextContent("7");
    expect(location.history.at(-1)).toBe("/chat");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBe("renewed-token");
    // Several requests failed at once; the session was renewed only once (a refresh
    // token works once: a second use would end the session).
    expect(api.requestsTo("POST", "/api/auth/refresh")).toHaveLength(1);
  });

  it("logs out from the navigation", async () => {
    api.on("GET", "/api/auth/me", {
      json: { id: 1, username: "ada", email: "ada@example.com", is_admin: false, created_at: now },
    });
    const { user, location } = renderApp(api, "/chat");

    await user.click(await screen.findByRole("button", { name: "Log out" }));
    expect(await screen.findByLabelText("Username")).toBeInTheDocument();
    expect(location.history.at(-1)).toBe("/login");
    expect(window.localStorage.getItem(TOKEN_STORAGE_KEY)).toBeNull();
    // The server was told, so the session ends there too (not only in this tab).
    expect(api.requestsTo("POST", "/api/auth/logout")[0]?.headers.authorization).toBe(
      "Bearer test-session-token",
    );
  });
});
