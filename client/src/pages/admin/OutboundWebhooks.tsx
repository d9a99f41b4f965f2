import { useState, type FormEvent } from "react";
import {
  useCreateWebhookEndpoint,
  useDeleteWebhookEndpoint,
  useRetryWebhookDelivery,
  useWebhookDeliveries,
  useWebhookEndpoints,
  type DeliveryStatus,
  type WebhookDelivery,
  type WebhookEndpointCreated,
} from "../../api/outboundWebhooks";
import { Alert } from "../../components/ui/Alert";
import { Badge, type BadgeTone } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { TextField } from "../../components/ui/TextField";
import type { MessageKey } from "../../i18n/messages";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatDateTime } from "../../lib/format";

const TONES: Record<DeliveryStatus, BadgeTone> = {
  pending: "info", processing: "info", delivered: "success", failed: "warning", dead: "error", canceled: "neutral",
};

function StatusBadge({ status }: { status: DeliveryStatus }) {
  const { t } = useI18n();
  return <Badge tone={TONES[status]}>{t(`admin.outbound.status.${status}` as MessageKey)}</Badge>;
}

/** A new endpoint's signing secret, shown once. */
function SecretOnce({ made, onDone }: { made: WebhookEndpointCreated; onDone: () => void }) {
  const { t } = useI18n();
  return (
    <Alert tone="warning" title={t("admin.outbound.secretTitle")} data-testid="outbound-secret">
      <p>{t("admin.outbound.secretOnce")}</p>
      <code className="mt-2 block break-all rounded bg-white/70 px-2 py-1 font-mono text-xs"
        data-testid="outbound-secret-value">{made.secret}</code>
      <Button size="sm" variant="secondary" className="mt-2" onClick={onDone}>{t("admin.outbound.stored")}</Button>
    </Alert>
  );
}

function Endpoints() {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const endpoints = useWebhookEndpoints();
  const create = useCreateWebhookEndpoint();
  const remove = useDeleteWebhookEndpoint();
  const [url, setUrl] = useState("");
  const [events, setEvents] = useState("*");
  const [made, setMade] = useState<WebhookEndpointCreated | null>(null);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const enabled_events = events.split(",").map((s) => s.trim()).filter(Boolean);
    create.mutate({ url: url.trim(), enabled_events }, {
      onSuccess: (result) => { setMade(result); setUrl(""); },
    });
  };
  const items = endpoints.data?.items ?? [];
  return (
    <div className="space-y-3">
      <h3 className="text-base font-semibold text-slate-900">{t("admin.outbound.endpoints")}</h3>
      {made ? <SecretOnce made={made} onDone={() => setMade(null)} /> : null}
      <Card className="p-4">
        <form onSubmit={submit} className="grid gap-3 sm:grid-cols-[2fr_1fr_auto] sm:items-end">
          <TextField label={t("admin.outbound.url")} value={url} onChange={(e) => setUrl(e.target.value)}
            required maxLength={2048} placeholder="https://app.example.com/hooks" data-testid="outbound-url" />
          <TextField label={t("admin.outbound.events")} value={events} onChange={(e) => setEvents(e.target.value)}
            required hint={t("admin.outbound.eventsHint")} data-testid="outbound-events" />
          <Button type="submit" busy={create.isPending} data-testid="outbound-create">{t("admin.outbound.add")}</Button>
        </form>
        {create.isError ? <Alert tone="error" className="mt-3"><p>{errorText(i18n, create.error)}</p></Alert> : null}
      </Card>
      {endpoints.isPending ? <Skeleton className="h-10 w-full" /> : endpoints.isError ? (
        <QueryError title={t("admin.outbound.loadError")} error={endpoints.error} onRetry={() => void endpoints.refetch()} />
      ) : items.length === 0 ? (
        <p className="text-sm text-slate-600" data-testid="outbound-endpoints">{t("admin.outbound.noEndpoints")}</p>
      ) : (
        <Card className="overflow-hidden">
          <ul className="divide-y divide-slate-100" data-testid="outbound-endpoints">
            {items.map((endpoint) => (
              <li key={endpoint.id} className="flex flex-wrap items-start justify-between gap-3 px-4 py-3"
                data-testid={`outbound-endpoint-${endpoint.id}`}>
                <div className="min-w-0">
                  <p className="break-all font-mono text-sm text-slate-800">{endpoint.url}</p>
                  <p className="text-xs text-slate-500">
                    {endpoint.enabled_events.join(", ")} · {endpoint.secret_prefix}… · {formatDateTime(endpoint.created_at, locale)}
                  </p>
                </div>
                <Button size="sm" variant="secondary" busy={remove.isPending && remove.variables === endpoint.id}
                  onClick={() => remove.mutate(endpoint.id)}
                  aria-label={t("admin.outbound.removeLabel", { url: endpoint.url })}>
                  {t("admin.outbound.remove")}
                </Button>
              </li>
            ))}
          </ul>
        </Card>
      )}
    </div>
  );
}

function DeliveryItem({ delivery }: { delivery: WebhookDelivery }) {
  const i18n = useI18n();
  const { t, locale, plural } = i18n;
  const retry = useRetryWebhookDelivery();
  const last = delivery.log[delivery.log.length - 1];
  return (
    <li className="px-4 py-3" data-testid="outbound-delivery">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div className="min-w-0">
          <p className="font-medium text-slate-800">{delivery.event_type}</p>
          <p className="break-all font-mono text-[11px] text-slate-500">{delivery.event_id}</p>
          <p className="text-xs text-slate-500">
            {formatDateTime(delivery.created_at, locale)} · {plural("admin.outbound.attempts", delivery.attempts)}
            {last ? ` · ${t("admin.outbound.lastAttempt", { code: last.status_code ?? "—", ms: last.duration_ms })}` : ""}
          </p>
          {delivery.last_error ? <p className="break-words font-mono text-[11px] text-rose-700">{delivery.last_error}</p> : null}
        </div>
        <div className="flex shrink-0 flex-col items-end gap-1">
          <StatusBadge status={delivery.status} />
          {delivery.status !== "delivered" && delivery.status !== "processing" ? (
            <Button size="sm" variant="secondary" busy={retry.isPending} onClick={() => retry.mutate(delivery.id)}
              data-testid="outbound-retry">{t("admin.outbound.retry")}</Button>
          ) : null}
          {retry.isError ? <p role="status" className="text-xs text-rose-700">{errorText(i18n, retry.error)}</p> : null}
        </div>
      </div>
    </li>
  );
}

function Deliveries() {
  const { t } = useI18n();
  const deliveries = useWebhookDeliveries();
  const items = deliveries.data?.items ?? [];
  return (
    <div className="space-y-3">
      <h3 className="text-base font-semibold text-slate-900">{t("admin.outbound.deliveries")}</h3>
      {deliveries.isPending ? <Skeleton className="h-10 w-full" /> : deliveries.isError ? (
        <QueryError title={t("admin.outbound.loadError")} error={deliveries.error} onRetry={() => void deliveries.refetch()} />
      ) : items.length === 0 ? (
        <p className="text-sm text-slate-600" data-testid="outbound-deliveries">{t("admin.outbound.noDeliveries")}</p>
      ) : (
        <Card className="overflow-hidden">
          <ul className="divide-y divide-slate-100" data-testid="outbound-deliveries">
            {items.map((d) => <DeliveryItem key={d.id} delivery={d} />)}
          </ul>
        </Card>
      )}
    </div>
  );
}

/** Events this server sends to the operator's own endpoints: where, and how it went. */
export function OutboundWebhooks() {
  const { t } = useI18n();
  return (
    <section aria-labelledby="admin-outbound-title" className="mt-10 space-y-6">
      <div>
        <h2 id="admin-outbound-title" className="text-lg font-semibold text-slate-900">{t("admin.outbound.title")}</h2>
        <p className="text-sm text-slate-600">{t("admin.outbound.subtitle")}</p>
      </div>
      <Endpoints />
      <Deliveries />
    </section>
  );
}
