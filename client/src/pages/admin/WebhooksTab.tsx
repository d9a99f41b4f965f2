import { useState, type ReactNode } from "react";
import { ReprocessUnavailable, WEBHOOK_STATUSES, useAdminWebhooks, useProcessWebhook } from "../../api/admin";
import { ApiError } from "../../api/errors";
import type { WebhookEvent, WebhookStatus } from "../../api/types";
import { WebhookStatusBadge, inWords } from "../../components/admin/labels";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { DataTable } from "../../components/ui/DataTable";
import { Icon } from "../../components/ui/Icon";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatDateTime } from "../../lib/format";
import { useMediaQuery } from "../../lib/useMediaQuery";
import { ListStates } from "../../components/admin/ListStates";
import { OutboundWebhooks } from "./OutboundWebhooks";

/** Events that did not finish (waiting, retrying, or given up on: a dead letter) can be
 * run again now. */
const RETRYABLE = new Set(["failed", "received", "dead"]);

type Outcome = { ok: true; status: string | null } | { ok: false; message: string };

function StatusFilter({ status, onChange }: { status: WebhookStatus | null; onChange: (s: WebhookStatus | null) => void }) {
  const i18n = useI18n();
  const { t } = i18n;
  const choices: { value: WebhookStatus | null; label: string }[] = [
    { value: null, label: t("admin.filter.all") },
    ...WEBHOOK_STATUSES.map((s) => ({ value: s, label: inWords(i18n, "admin.webhookStatus", s) })),
  ];
  return (
    <div role="group" aria-label={t("admin.webhooks.filter")} className="-mx-4 overflow-x-auto px-4 sm:mx-0 sm:px-0">
      <div className="inline-flex min-w-max rounded-lg bg-white p-0.5 shadow-sm ring-1 ring-slate-200">
        {choices.map((choice) => (
          <button key={choice.value ?? "all"} type="button" aria-pressed={status === choice.value}
            onClick={() => onChange(choice.value)}
            className={[
              "h-8 rounded-md px-3 text-sm font-medium transition-colors",
              status === choice.value ? "bg-brand-600 text-white" : "text-slate-600 hover:bg-slate-100",
            ].join(" ")}>
            {choice.label}
          </button>
        ))}
      </div>
    </div>
  );
}

export function WebhooksTab() {
  const i18n = useI18n();
  const { t } = i18n;
  const [status, setStatus] = useState<WebhookStatus | null>(null);
  const events = useAdminWebhooks(status);
  const process = useProcessWebhook();
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});
  const rows = events.data ?? [];
  // Phones get a list of cards: five columns do not fit in 375 px.
  const wide = useMediaQuery("(min-width: 768px)");
  const action = (event: WebhookEvent) => (
    <RunAgain event={event} outcome={outcomes[event.id]}
      busy={process.isPending && process.variables === event.id}
      disabled={process.isPending} onRunAgain={runAgain} />
  );

  const runAgain = (eventId: string) => {
    process.mutate(eventId, {
      onSuccess: (result) => setOutcomes((all) => ({ ...all, [eventId]: { ok: true, status: result.status } })),
      onError: (error) => {
        const message = error instanceof ReprocessUnavailable
          ? t("admin.webhooks.unavailable")
          : error instanceof ApiError && error.code === "payment_not_found"
            ? t("admin.webhooks.notAtStripe")
            : errorText(i18n, error);
        setOutcomes((all) => ({ ...all, [eventId]: { ok: false, message } }));
      },
    });
  };

  return (
    <section aria-labelledby="admin-webhooks-title">
      <h2 id="admin-webhooks-title" className="sr-only">{t("admin.tab.webhooks")}</h2>
      <div className="mb-4 flex flex-wrap items-center justify-between gap-3">
        <StatusFilter status={status} onChange={setStatus} />
        <Button variant="ghost" size="sm" icon={<Icon name="refresh" className="size-4" />}
          busy={events.isFetching && !events.isPending} onClick={() => void events.refetch()}>
          {t("admin.refresh")}
        </Button>
      </div>
      <ListStates query={events} count={rows.length} loadError={t("admin.webhooks.loadError")} testId="admin-webhooks"
        empty={status ? t("admin.webhooks.noneWithStatus") : t("admin.webhooks.none")}>
        {wide ? (
          <Card className="overflow-hidden">
            <div className="overflow-x-auto" data-testid="admin-webhooks">
              <DataTable caption={t("admin.webhooks.caption")} columns={[
                { label: t("admin.webhooks.col.event"), className: "px-4 py-3" },
                { label: t("admin.webhooks.col.status"), className: "px-4 py-3" },
                { label: t("admin.webhooks.col.lastError"), className: "px-4 py-3" },
                { label: t("admin.webhooks.col.times"), className: "hidden px-4 py-3 lg:table-cell" },
                { label: <span className="sr-only">{t("admin.webhooks.col.action")}</span>, className: "px-4 py-3 text-right" },
              ]}>
                {rows.map((event) => (
                  <WebhookRow key={event.id} event={event} action={action(event)} />
                ))}
              </DataTable>
            </div>
          </Card>
        ) : (
          <Card className="overflow-hidden">
            <ul className="divide-y divide-slate-100" data-testid="admin-webhooks" aria-label={t("admin.webhooks.caption")}>
              {rows.map((event) => <WebhookItem key={event.id} event={event} action={action(event)} />)}
            </ul>
          </Card>
        )}
      </ListStates>
      <OutboundWebhooks />
    </section>
  );
}

interface RunAgainProps {
  event: WebhookEvent;
  outcome: Outcome | undefined;
  busy: boolean;
  disabled: boolean;
  onRunAgain: (eventId: string) => void;
}

function RunAgain({ event, outcome, busy, disabled, onRunAgain }: RunAgainProps) {
  const i18n = useI18n();
  const { t } = i18n;
  return (
    <>
      {RETRYABLE.has(event.status) ? (
        <Button size="sm" variant="secondary" busy={busy} disabled={disabled}
          aria-label={t("admin.webhooks.processAgainLabel", { id: event.id })}
          onClick={() => onRunAgain(event.id)} data-testid="admin-webhook-process">
          {t("admin.webhooks.processAgain")}
        </Button>
      ) : null}
      {outcome ? (
        <p role="status" className={`mt-1 text-xs ${outcome.ok ? "text-emerald-700" : "text-rose-700"}`}>
          {outcome.ok
            ? t("admin.webhooks.processedNow", { status: outcome.status ? inWords(i18n, "admin.webhookStatus", outcome.status) : "—" })
            : outcome.message}
        </p>
      ) : null}
    </>
  );
}

function Attempts({ n }: { n: number }) {
  const { plural } = useI18n();
  return <>{plural("admin.webhooks.attempts", n)}</>;
}

/** When the worker tries a failed event again (it backs off after each failure). */
function NextAttempt({ event }: { event: WebhookEvent }) {
  const { t, locale } = useI18n();
  if (event.status !== "failed" || !event.next_attempt_at) return null;
  return (
    <span className="block" data-testid="admin-webhook-next-attempt">
      {t("admin.webhooks.nextAttempt", { time: formatDateTime(event.next_attempt_at, locale) })}
    </span>
  );
}

function LastError({ text }: { text: string | null }) {
  return text
    ? <span className="block break-words font-mono text-[11px] text-rose-700">{text}</span>
    : <span className="text-xs text-slate-400">—</span>;
}

function Ids({ event }: { event: WebhookEvent }) {
  return (
    <>
      <span className="block break-all font-mono text-[11px] text-slate-500">{event.id}</span>
      {event.stripe_payment_intent_id ? (
        <span className="block break-all font-mono text-[11px] text-slate-500">{event.stripe_payment_intent_id}</span>
      ) : null}
    </>
  );
}

function WebhookRow({ event, action }: { event: WebhookEvent; action: ReactNode }) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  return (
    <tr className="align-top" data-testid="admin-webhook-row">
      <td className="px-4 py-3">
        <span className="block break-words font-medium text-slate-800">{event.type}</span>
        <Ids event={event} />
        <time dateTime={event.received_at} className="block text-xs text-slate-500 lg:hidden">
          {formatDateTime(event.received_at, locale)}
        </time>
      </td>
      <td className="whitespace-nowrap px-4 py-3">
        <WebhookStatusBadge i18n={i18n} status={event.status} />
        <span className="mt-1 block text-xs text-slate-500"><Attempts n={event.attempts} /></span>
      </td>
      <td className="max-w-xs px-4 py-3"><LastError text={event.last_error} /></td>
      <td className="hidden whitespace-nowrap px-4 py-3 text-xs text-slate-500 lg:table-cell">
        <span className="block">{t("admin.webhooks.received", { time: formatDateTime(event.received_at, locale) })}</span>
        {event.processed_at ? (
          <span className="block">{t("admin.webhooks.processed", { time: formatDateTime(event.processed_at, locale) })}</span>
        ) : null}
        <NextAttempt event={event} />
      </td>
      <td className="px-4 py-3 text-right">{action}</td>
    </tr>
  );
}

function WebhookItem({ event, action }: { event: WebhookEvent; action: ReactNode }) {
  const i18n = useI18n();
  const { locale } = i18n;
  return (
    <li className="px-4 py-3" data-testid="admin-webhook-row">
      <div className="flex items-start justify-between gap-3">
        <div className="min-w-0">
          <p className="break-words font-medium text-slate-800">{event.type}</p>
          <time dateTime={event.received_at} className="block text-xs text-slate-500">
            {formatDateTime(event.received_at, locale)}
          </time>
        </div>
        <div className="shrink-0 text-right">
          <WebhookStatusBadge i18n={i18n} status={event.status} />
          <span className="mt-0.5 block text-xs text-slate-500"><Attempts n={event.attempts} /></span>
        </div>
      </div>
      <div className="mt-1"><Ids event={event} /></div>
      {event.last_error ? <div className="mt-1.5"><LastError text={event.last_error} /></div> : null}
      <span className="mt-1 block text-xs text-slate-500"><NextAttempt event={event} /></span>
      {RETRYABLE.has(event.status) ? <div className="mt-2">{action}</div> : action}
    </li>
  );
}
