/**
 * Outbound webhooks (admin): the endpoints events are sent to, and the delivery log. A
 * signing secret exists only in the answer to create (or to a roll); it is never cached.
 */
import { unwrap } from "./client";
import { useApiQuery, useRefreshingMutation } from "./queries";
import type { components } from "./schema";
import type { Missing } from "./types";

export type WebhookEndpoint = components["schemas"]["WebhookEndpointOut"];
export type WebhookEndpointCreated = components["schemas"]["WebhookEndpointCreated"];
export type WebhookSecretRolled = components["schemas"]["WebhookSecretRolled"];
export type WebhookDelivery = components["schemas"]["WebhookDeliveryOut"];
export type DeliveryStatus = components["schemas"]["DeliveryStatus"];
/** What the admin form sends; a new endpoint is enabled. */
export type NewWebhookEndpoint = Omit<components["schemas"]["WebhookEndpointCreate"], "enabled">;

/** Every delivery status (checked against the schema below). */
export const DELIVERY_STATUSES = [
  "pending", "processing", "delivered", "failed", "dead", "canceled",
] as const satisfies readonly DeliveryStatus[];
const statusesComplete: Missing<DeliveryStatus, (typeof DELIVERY_STATUSES)[number]> = true;
void statusesComplete;

export const RECENT_DELIVERIES = 20;
const endpointsKey = ["admin", "webhook-endpoints"] as const;
const deliveriesKey = ["admin", "webhook-deliveries"] as const;

export function useWebhookEndpoints() {
  return useApiQuery(
    endpointsKey,
    (api) => unwrap(api.client.GET("/api/admin/webhook-endpoints")),
  );
}

export function useWebhookDeliveries() {
  return useApiQuery(
    deliveriesKey,
    (api) =>
      unwrap(api.client.GET("/api/admin/webhook-deliveries", {
        params: { query: { limit: RECENT_DELIVERIES } },
      })),
  );
}

export function useCreateWebhookEndpoint() {
  return useRefreshingMutation(
    (api, body: NewWebhookEndpoint) =>
      unwrap(api.client.POST("/api/admin/webhook-endpoints", { body: { ...body, enabled: true } })),
    endpointsKey,
  );
}

export function useDeleteWebhookEndpoint() {
  return useRefreshingMutation(
    (api, endpointId: number) =>
      unwrap(api.client.DELETE("/api/admin/webhook-endpoints/{endpoint_id}", {
        params: { path: { endpoint_id: endpointId } },
      })),
    ["admin"],
  );
}

export function useRetryWebhookDelivery() {
  return useRefreshingMutation(
    (api, deliveryId: number) =>
      unwrap(api.client.POST("/api/admin/webhook-deliveries/{delivery_id}/retry", {
        params: { path: { delivery_id: deliveryId } },
      })),
    deliveriesKey,
  );
}

/** How long a rolled secret may keep signing beside the new one, in hours (the server allows 0–168). */
export const ROLL_OVERLAP_HOURS = [0, 1, 24, 72, 168] as const;
export type RollOverlap = (typeof ROLL_OVERLAP_HOURS)[number];

/** A new signing secret; the current one keeps signing beside it for `hours`. */
export function useRollWebhookSecret() {
  return useRefreshingMutation(
    (api, { endpointId, hours }: { endpointId: number; hours: RollOverlap }) =>
      unwrap(api.client.POST("/api/admin/webhook-endpoints/{endpoint_id}/roll-secret", {
        params: { path: { endpoint_id: endpointId } },
        body: { expires_in_hours: hours },
      })),
    endpointsKey,
  );
}
