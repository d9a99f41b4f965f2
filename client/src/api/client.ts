import createClient from "openapi-fetch";
import { fetchWithRenewal, renewSession, type Renewal } from "../auth/refresh";
import { ApiError, networkError, toApiError } from "./errors";
import type { paths } from "./schema";

export type ApiClient = ReturnType<typeof createClient<paths>>;

export interface Api {
  client: ApiClient;
  /** Prefix for hand-made requests (the streaming endpoint); "" means same origin. */
  baseUrl: string;
  authHeaders: () => Record<string, string>;
  /** Called when the session is gone (a 401 that renewing the session did not cure). */
  onUnauthorized: () => void;
  /** Renews the access token after `failedToken` got a 401 (hand-made requests use it). */
  renew: (failedToken: string | null) => Promise<Renewal>;
}

export interface ApiOptions {
  baseUrl: string;
  getToken: () => string | null;
  onUnauthorized: () => void;
}

export function createApi({ baseUrl, getToken, onUnauthorized }: ApiOptions): Api {
  // A 401 on a request that carried a token means the access token expired or the
  // session ended: renew once and retry; a 401 on sign-in (no token) is just that.
  const client = createClient<paths>({ baseUrl, fetch: fetchWithRenewal(baseUrl, onUnauthorized) });
  client.use({
    onRequest({ request }) {
      const token = getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  const authHeaders = (): Record<string, string> => {
    const token = getToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  };
  const renew = (failedToken: string | null) => renewSession(baseUrl, failedToken);
  return { client, baseUrl, authHeaders, onUnauthorized, renew };
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Resolves to the response body, or throws an ApiError with the server's code. */
export async function unwrap<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (cause) {
    if (cause instanceof ApiError) throw cause;
    throw networkError(cause);
  }
  if (!result.response.ok) throw toApiError(result.response.status, result.error);
  return result.data as T;
}
