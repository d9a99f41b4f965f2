import { useState, type FormEvent } from "react";
import {
  ROLL_OVERLAP_HOURS,
  useCreateWebhookEndpoint,
  useDeleteWebhookEndpoint,
  useRetryWebhookDelivery,
  useRollWebhookSecret,
  useWebhookDeliveries,
  useWebhookEndpoints,
  type DeliveryStatus,
  type RollOverlap,
  type WebhookDelivery,
  type WebhookEndpoint,
} from "../../api/outboundWebhooks";
import { Alert } from "../../components/ui/Alert";
import { Badge, type BadgeTone } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { ConfirmDialog } from "../../components/ui/ConfirmDialog";
import { QueryError } from "../../components/ui/QueryError";
import { SelectField } from "../../components/ui/SelectField";
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

/** A signing secret, shown once: a new endpoint's, or the new one of a roll (with until when the old one still signs). */
interface Shown {
  secret: string;
  previousUntil?: string;
}

function SecretOnce({ shown, onDone }: { shown: Shown; onDone: () => void }) {
  const { t, locale } = useI18n();
  return (
    <Alert tone="warning" title={t(shown.previousUntil ? "admin.outbound.newSecretTitle" : "admin.outbound.secretTitle")}
      data-testid="outbound-secret">
      <p>{t("admin.outbound.secretOnce")}</p>
      {shown.previousUntil ? (
        <p data-testid="outbound-previous-until">
          {t("admin.outbound.previousUntil", { time: formatDateTime(shown.previousUntil, locale) })}
        </p>
      ) : null}
      <code className="mt-2 block break-all rounded bg-white/70 px-2 py-1 font-mono text-xs"
        data-testid="outbound-secret-value">{shown.secret}</code>
      <Button size="sm" variant="secondary" className="mt-2" onClick={onDone}>{t("admin.outbound.stored")}</Button>
    </Alert>
  );
}

const OVERLAP_LABELS: Record<RollOverlap, MessageKey> = {
  0: "admin.outbound.rollNow",
  1: "admin.outbound.rollIn1h",
  24: "admin.outbound.rollIn24h",
  72: "admin.outbound.rollIn3d",
  168: "admin.outbound.rollIn7d",
};

/** Asks how long the current secret keeps signing, then rolls it. */
function RollSecret({ endpoint, onRolled, onCancel }: {
  endpoint: WebhookEndpoint;
  onRolled: (shown: Shown) => void;
  onCancel: () => void;
}) {
  const i18n = useI18n();
  const { t } = i18n;
  const roll = useRollWebhookSecret();
  const [hours, setHours] = useState<RollOverlap>(24);
  return (
    <ConfirmDialog
      title={t("admin.outbound.rollTitle", { url: endpoint.url })}
      confirmLabel={t("admin.outbound.roll")}
      cancelLabel={t("admin.outbound.cancel")}
      busy={roll.isPending}
      onConfirm={() => roll.mutate({ endpointId: endpoint.id, hours }, {
        onSuccess: (result) => onRolled({ secret: result.secret, previousUntil: result.previous_secret_expires_at }),
      })}
      onCancel={onCancel}
    >
      <p>{t("admin.outbound.rollBody")}</p>
      <SelectField className="mt-3" label={t("admin.outbound.rollOverlap")} value={String(hours)}
        onChange={(e) => setHours(Number(e.target.value) as RollOverlap)} data-testid="outbound-roll-overlap"
        options={ROLL_OVERLAP_HOURS.map((h) => ({ value: String(h), label: t(OVERLAP_LABELS[h]) }))} />
      {roll.isError ? <p role="status" className="mt-2 text-xs text-rose-700">{errorText(i18n, roll.error)}</p> : null}
    </ConfirmDialog>
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
  const [shown, setShown] = useState<Shown | null>(null);
  const [rolling, setRolling] = useState<WebhookEndpoint | null>(null);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    const enabled_events = events.split(",").map((s) => s.trim()).filter(Boolean);
    create.mutate({ url: url.trim(), enabled_events }, {
      onSuccess: (result) => { setShown({ secret: result.secret }); setUrl(""); },
    });
  };
  const items = endpoints.data?.items ?? [];
  return (
    <div className="space-y-3">
      <h3 className="text-base font-semibold text-slate-900">{t("admin.outbound.endpoints")}</h3>
      {shown ? <SecretOnce shown={shown} onDone={() => setShown(null)} /> : null}
      {rolling ? (
        <RollSecret endpoint={rolling} onCancel={() => setRolling(null)}
          onRolled={(next) => { setRolling(null); setShown(next); }} />
      ) : null}
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
                  {endpoint.previous_secret_expires_at ? (
                    <p className="text-xs text-amber-700" data-testid="outbound-previous-signs">
                      {t("admin.outbound.previousSigns", { time: formatDateTime(endpoint.previous_secret_expires_at, locale) })}
                    </p>
                  ) : null}
                </div>
                <div className="flex shrink-0 gap-2">
                  <Button size="sm" variant="secondary" onClick={() => setRolling(endpoint)}
                    aria-label={t("admin.outbound.rollLabel", { url: endpoint.url })}>
                    {t("admin.outbound.roll")}
                  </Button>
                  <Button size="sm" variant="secondary" busy={remove.isPending && remove.variables === endpoint.id}
                    onClick={() => remove.mutate(endpoint.id)}
                    aria-label={t("admin.outbound.removeLabel", { url: endpoint.url })}>
                    {t("admin.outbound.remove")}
                  </Button>
                </div>
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
