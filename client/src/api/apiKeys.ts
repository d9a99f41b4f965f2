/**
 * Service API keys (admin): list, create, rotate, revoke. A secret exists only in the
 * answer to create or rotate; it is never cached in the query client.
 */
import { unwrap } from "./client";
import { useApiQuery, useRefreshingMutation } from "./queries";
import type { components } from "./schema";
import type { Missing } from "./types";

export type ApiKey = components["schemas"]["ApiKeyOut"];
export type ApiKeyScope = components["schemas"]["ApiKeyScope"];
export type ApiKeyCreated = components["schemas"]["ApiKeyCreated"];

/** Every scope a key may carry (checked against the schema below). */
export const API_KEY_SCOPES = ["read", "charge", "grant", "checkout"] as const satisfies readonly ApiKeyScope[];
const scopesComplete: Missing<ApiKeyScope, (typeof API_KEY_SCOPES)[number]> = true;
void scopesComplete;

const apiKeysKey = ["admin", "api-keys"] as const;

export function useApiKeys() {
  return useApiQuery(
    apiKeysKey,
    (api) => unwrap(api.client.GET("/api/admin/api-keys")),
  );
}

export function useCreateApiKey() {
  return useRefreshingMutation(
    (api, body: { name: string; scopes: ApiKeyScope[] }) =>
      unwrap(api.client.POST("/api/admin/api-keys", { body })),
    apiKeysKey,
  );
}

export function useRotateApiKey() {
  return useRefreshingMutation(
    (api, keyId: number) =>
      unwrap(api.client.POST("/api/admin/api-keys/{key_id}/rotate", { params: { path: { key_id: keyId } } })),
    apiKeysKey,
  );
}

export function useRevokeApiKey() {
  return useRefreshingMutation(
    (api, keyId: number) =>
      unwrap(api.client.POST("/api/admin/api-keys/{key_id}/revoke", { params: { path: { key_id: keyId } } })),
    apiKeysKey,
  );
}
