/**
 * Renewing the session: the access token lives 15 minutes; the refresh token is an
 * HttpOnly cookie the browser sends only to /api/auth/refresh (and /logout), so no
 * script can read it. A 401 on a signed-in request calls `renewSession` once and the
 * request is sent again with the new token.
 *
 * Each refresh token works once, and using one twice ends the session (the server
 * takes it as a stolen copy). So renewals never overlap: one at a time in this tab (a
 * shared promise) and across tabs (a Web Lock); a tab that waited first checks whether
 * another tab already renewed.
 */
import { getSessionToken, reloadSessionToken, setSessionToken } from "./session";

export type Renewal =
  | { kind: "renewed"; token: string }
  | { kind: "signed-out" }
  | { kind: "unreachable" };

let inflight: Promise<Renewal> | null = null;

interface LockManager {
  request<T>(name: string, callback: () => Promise<T>): Promise<T>;
}

function withLock<T>(work: () => Promise<T>): Promise<T> {
  const locks = (globalThis.navigator as { locks?: LockManager } | undefined)?.locks;
  return locks ? locks.request("tokenbank-session-renewal", work) : work();
}

async function renew(baseUrl: string, failedToken: string | null): Promise<Renewal> {
  reloadSessionToken(); // another tab may have renewed (or signed out) meanwhile
  const current = getSessionToken();
  if (current === null) return { kind: "signed-out" };
  if (failedToken !== null && current !== failedToken) return { kind: "renewed", token: current };
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/api/auth/refresh`, {
      method: "POST",
      credentials: "same-origin",
    });
  } catch {
    return { kind: "unreachable" };
  }
  if (response.status === 401) {
    setSessionToken(null);
    return { kind: "signed-out" };
  }
  if (!response.ok) return { kind: "unreachable" };
  const body = (await response.json()) as { access_token?: unknown };
  if (typeof body.access_token !== "string") return { kind: "unreachable" };
  setSessionToken(body.access_token);
  return { kind: "renewed", token: body.access_token };
}

/** One renewal at a time; `failedToken` is the token the server just refused. */
export function renewSession(baseUrl: string, failedToken: string | null): Promise<Renewal> {
  if (!inflight) {
    inflight = withLock(() => renew(baseUrl, failedToken)).finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

function bearerOf(headers: Headers): string | null {
  const value = headers.get("Authorization");
  return value?.startsWith("Bearer ") ? value.slice("Bearer ".length) : null;
}

/**
 * `fetch` for signed-in requests: on a 401 it renews the session once and sends the
 * request again; `onSignedOut` runs when the session cannot be renewed.
 */
export function fetchWithRenewal(baseUrl: string, onSignedOut: () => void) {
  return async (input: Request): Promise<Response> => {
    const sentToken = bearerOf(input.headers);
    const again = sentToken ? input.clone() : null;
    const response = await fetch(input);
    if (response.status !== 401 || !again) return response;
    const renewal = await renewSession(baseUrl, sentToken);
    if (renewal.kind === "renewed") {
      again.headers.set("Authorization", `Bearer ${renewal.token}`);
      const retried = await fetch(again);
      if (retried.status === 401) onSignedOut();
      return retried;
    }
    if (renewal.kind === "signed-out") onSignedOut();
    return response;
  };
}
