import { useId, useState, type FormEvent } from "react";
import { ApiError } from "../../api/errors";
import { REFUND_REASONS, useRefundReply, type FinishReason, type RefundReason } from "../../api/pricing";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { Button } from "../ui/Button";
import { Icon } from "../ui/Icon";

interface ReplyFooterProps {
  chatId: string;
  messageId: string;
  /** Tokens this reply was charged; null when the server did not say. */
  cost: number | null;
  refunded: boolean;
  /** Why the reply ended, when it was not the model finishing on its own. */
  finishReason?: FinishReason | null;
}

/** The reasons a reply can stop early that the person should know of. */
const STOPPED_EARLY: Partial<Record<FinishReason, "chat.finish.length" | "chat.finish.content_filter">> = {
  length: "chat.finish.length",
  content_filter: "chat.finish.content_filter",
};

/** Under an AI reply: what it cost, and "refund this reply" (once, with a reason). */
export function ReplyFooter({ chatId, messageId, cost, refunded, finishReason }: ReplyFooterProps) {
  const i18n = useI18n();
  const { t, plural } = i18n;
  const [open, setOpen] = useState(false);
  const refund = useRefundReply(chatId, messageId);
  const done = refunded || refund.isSuccess;
  const alreadyDone = refund.error instanceof ApiError && refund.error.code === "already_refunded";
  const stopped = finishReason ? STOPPED_EARLY[finishReason] : undefined;
  return (
    <>
      {stopped ? (
        <span data-testid="message-finish" className="font-medium text-amber-700">{t(stopped)}</span>
      ) : null}
      {cost !== null ? (
        <span data-testid="message-cost" className={`tabular-nums ${done ? "line-through" : ""}`}>
          {plural("common.tokens", cost)}
        </span>
      ) : null}
      {done ? (
        <span data-testid="reply-refunded" className="inline-flex items-center gap-1 font-medium text-emerald-700">
          <Icon name="check" className="size-3" />
          {refund.data ? t("refund.doneAmount", { tokens: plural("common.tokens", refund.data.refunded) }) : t("refund.done")}
        </span>
      ) : cost !== null && cost > 0 && !open ? (
        <button
          type="button"
          data-testid="refund-reply"
          onClick={() => setOpen(true)}
          className="inline-flex items-center gap-1 rounded text-slate-400 underline-offset-2 hover:text-slate-600 hover:underline"
        >
          <Icon name="undo" className="size-3" />
          {t("refund.ask")}
        </button>
      ) : null}
      {open && !done ? (
        <RefundForm
          busy={refund.isPending}
          error={refund.isError && !alreadyDone ? errorText(i18n, refund.error) : null}
          onCancel={() => {
            setOpen(false);
            refund.reset();
          }}
          onSubmit={(reason, note) => refund.mutate({ reason, note: note || undefined })}
        />
      ) : null}
    </>
  );
}

interface RefundFormProps {
  busy: boolean;
  error: string | null;
  onCancel: () => void;
  onSubmit: (reason: RefundReason, note: string) => void;
}

function RefundForm({ busy, error, onCancel, onSubmit }: RefundFormProps) {
  const { t } = useI18n();
  const [reason, setReason] = useState<RefundReason | null>(null);
  const [note, setNote] = useState("");
  const legendId = useId();
  const noteId = useId();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (reason && !busy) onSubmit(reason, note.trim());
  };
  return (
    <form
      onSubmit={submit}
      onKeyDown={(event) => {
        if (event.key === "Escape") onCancel();
      }}
      data-testid="refund-form"
      aria-labelledby={legendId}
      className="mt-1 w-full rounded-xl bg-white p-3 text-sm text-slate-700 shadow-sm ring-1 ring-slate-200"
    >
      <fieldset>
        <legend id={legendId} className="font-medium text-slate-900">{t("refund.title")}</legend>
        <div className="mt-2 flex flex-wrap gap-x-4 gap-y-1">
          {REFUND_REASONS.map((value, index) => (
            <label key={value} className="inline-flex items-center gap-1.5">
              <input
                type="radio"
                autoFocus={index === 0}
                name="refund-reason"
                value={value}
                checked={reason === value}
                onChange={() => setReason(value)}
              />
              {t(`refund.reason.${value}`)}
            </label>
          ))}
        </div>
      </fieldset>
      <label htmlFor={noteId} className="mt-2 block text-xs text-slate-500">{t("refund.note")}</label>
      <input
        id={noteId}
        type="text"
        maxLength={500}
        value={note}
        onChange={(event) => setNote(event.target.value)}
        className="mt-1 block h-8 w-full rounded-md border border-slate-300 px-2 text-sm"
      />
      {error ? (
        <p role="alert" data-testid="refund-error" className="mt-2 text-rose-700">{error}</p>
      ) : null}
      <div className="mt-3 flex gap-2">
        <Button type="submit" size="sm" disabled={!reason} busy={busy} data-testid="refund-submit">{t("refund.submit")}</Button>
        <Button size="sm" variant="ghost" onClick={onCancel}>{t("refund.cancel")}</Button>
      </div>
    </form>
  );
}
