import type { QueryClient } from "@tanstack/react-query";
import type { Api } from "../api/client";
import { setSessionToken } from "./session";

/**
 * Ends this session on the server (its refresh cookie goes with the request) and
 * forgets it here. Signing out locally never waits on the network's good will.
 */
export async function signOut(api: Api, queryClient: QueryClient): Promise<void> {
  try {
    await fetch(`${api.baseUrl}/api/auth/logout`, {
      method: "POST",
      credentials: "same-origin",
      headers: api.authHeaders(),
    });
  } catch {
    // Offline: the access token still expires within minutes.
  }
  setSessionToken(null);
  queryClient.clear();
}
