import { useState, type FormEvent } from "react";
import { useRefundReply } from "../../api/refunds";
import type { Message, RefundReason } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { Button } from "../ui/Button";
import { SelectField } from "../ui/SelectField";
import { TextField } from "../ui/TextField";

const REASONS: readonly RefundReason[] = ["wrong", "incomplete", "harmful", "other"];

/** "Refund this reply": once per charged AI reply, with a reason (and a note if wanted). */
export function RefundReply({ chatId, message }: { chatId: string; message: Message }) {
  const i18n = useI18n();
  const { t, plural } = i18n;
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState<RefundReason>("wrong");
  const [note, setNote] = useState("");
  const refund = useRefundReply(chatId);

  if (message.role !== "assistant" || !(message.tokens_charged > 0)) return null;
  if (message.refunded || refund.isSuccess) {
    return (
      <span data-testid="reply-refunded" className="mt-1 px-1 text-[11px] font-medium text-emerald-700">
        {refund.data
          ? t("chat.refund.done", { tokens: plural("common.tokens", refund.data.refunded) })
          : t("chat.refund.refunded")}
      </span>
    );
  }
  if (!open) {
    return (
      <button
        type="button"
        data-testid="refund-reply"
        onClick={() => setOpen(true)}
        className="mt-1 px-1 text-[11px] font-medium text-slate-500 underline-offset-2 hover:text-slate-800 hover:underline"
      >
        {t("chat.refund.ask")}
      </button>
    );
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (refund.isPending) return; // one request per click, however fast the clicks
    refund.mutate({ messageId: message.id, reason, note: note.trim() || null });
  };
  return (
    <form
      onSubmit={submit}
      data-testid="refund-form"
      aria-label={t("chat.refund.ask")}
      className="mt-2 w-full max-w-sm space-y-2 rounded-xl bg-slate-50 p-3 ring-1 ring-slate-200"
    >
      <SelectField
        label={t("chat.refund.reason")}
        value={reason}
        onChange={(e) => setReason(e.target.value as RefundReason)}
        options={REASONS.map((r) => ({ value: r, label: t(`chat.refund.reason.${r}`) }))}
      />
      <TextField
        label={t("chat.refund.note")}
        value={note}
        maxLength={500}
        onChange={(e) => setNote(e.target.value)}
      />
      {refund.isError ? (
        <p role="alert" data-testid="refund-error" className="text-xs text-rose-700">
          {errorText(i18n, refund.error)}
        </p>
      ) : null}
      <div className="flex gap-2">
        <Button type="submit" size="sm" busy={refund.isPending} disabled={refund.isPending} data-testid="refund-submit">
          {t("chat.refund.submit")}
        </Button>
        <Button variant="ghost" size="sm" onClick={() => setOpen(false)}>
          {t("chat.refund.cancel")}
        </Button>
      </div>
    </form>
  );
}
