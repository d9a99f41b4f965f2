/**
 * The hosted payment page's calls: authenticated by the signed link's token (from the
 * URL fragment), never by a tokenbank session, so they bypass the session client.
 */
import { networkError, toApiError } from "./errors";
import type { components } from "./schema";

export type HostedCheckout = components["schemas"]["CheckoutOut"];
export type HostedConfirmation = components["schemas"]["CheckoutConfirmOut"];

/** The link's token: `#token=...` (the fragment never reaches a server or a Referer). */
export function linkToken(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, "")).get("token");
  return token && token.length > 0 ? token : null;
}

async function call<T>(baseUrl: string, token: string, method: "GET" | "POST", path: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    });
  } catch (cause) {
    throw networkError(cause);
  }
  const body: unknown = await response.json().catch(() => null);
  if (!response.ok) throw toApiError(response.status, body);
  return body as T;
}

export function fetchCheckout(baseUrl: string, token: string): Promise<HostedCheckout> {
  return call(baseUrl, token, "GET", "/api/v1/checkout");
}

export function confirmCheckout(baseUrl: string, token: string): Promise<HostedConfirmation> {
  return call(baseUrl, token, "POST", "/api/v1/checkout/confirm");
}

