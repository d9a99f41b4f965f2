import createClient from "openapi-fetch";
import { ApiError, networkError, toApiError } from "./errors";
import type { paths } from "./schema";

export type ApiClient = ReturnType<typeof createClient<paths>>;

export interface Api {
  client: ApiClient;
  /** Prefix for hand-made requests (the streaming endpoint); "" means same origin. */
  baseUrl: string;
  authHeaders: () => Record<string, string>;
  /** Called when an authenticated request gets a 401 (expired or revoked session). */
  onUnauthorized: () => void;
}

export interface ApiOptions {
  baseUrl: string;
  getToken: () => string | null;
  onUnauthorized: () => void;
}

export function createApi({ baseUrl, getToken, onUnauthorized }: ApiOptions): Api {
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest({ request }) {
      const token = getToken();
      if (token) request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
    onResponse({ request, response }) {
      // A 401 on a request that carried a token means the session is gone;
      // a 401 on sign-in (no token) is just wrong credentials.
      if (response.status === 401 && request.headers.has("Authorization")) onUnauthorized();
      return response;
    },
  });
  const authHeaders = (): Record<string, string> => {
    const token = getToken();
    return token ? { Authorization: `Bearer ${token}` } : {};
  };
  return { client, baseUrl, authHeaders, onUnauthorized };
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
