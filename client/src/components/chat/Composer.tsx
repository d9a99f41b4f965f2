import type { FormEvent, KeyboardEvent, ReactNode, Ref } from "react";
import { useI18n } from "../../i18n/useI18n";
import { Icon } from "../ui/Icon";
import { Skeleton } from "../ui/Skeleton";
import { Spinner } from "../ui/Spinner";

interface ComposerProps {
  value: string;
  onChange: (value: string) => void;
  onSend: () => void;
  sending: boolean;
  /** Tokens per reply as the server states it; null while it loads or when it could not be read. */
  cost: number | null;
  costPending?: boolean;
  /** The server's limit on one message, when known. */
  maxLength?: number;
  inputRef?: Ref<HTMLTextAreaElement>;
  /** Controls under the text (the model picker and the cap). */
  toolbar?: ReactNode;
  /** What this message will cost (a quote or the model's price), in place of the flat per-reply cost. */
  estimate?: ReactNode;
}

export function Composer({
  value,
  onChange,
  onSend,
  sending,
  cost,
  costPending = false,
  maxLength,
  inputRef,
  toolbar,
  estimate,
}: ComposerProps) {
  const { t, plural } = useI18n();
  const canSend = value.trim().length > 0 && !sending;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (canSend) onSend();
  };
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    // Enter sends; Shift+Enter breaks the line; never while an IME is composing.
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      if (canSend) onSend();
    }
  };

  return (
    <form onSubmit={submit} className="rounded-2xl bg-white p-2 shadow-md ring-1 ring-slate-200 focus-within:ring-2 focus-within:ring-brand-500">
      <label htmlFor="chat-input" className="sr-only">
        {t("chat.inputLabel")}
      </label>
      <textarea
        id="chat-input"
        ref={inputRef}
        data-testid="chat-input"
        rows={2}
        value={value}
        readOnly={sending}
        maxLength={maxLength}
        onChange={(event) => onChange(event.target.value)}
        onKeyDown={onKeyDown}
        placeholder={t("chat.placeholder")}
        aria-describedby="chat-cost"
        className="block max-h-48 min-h-12 w-full resize-none rounded-xl border-0 bg-transparent px-3 py-2 text-[15px] text-slate-900 placeholder:text-slate-400 [field-sizing:content] focus-visible:outline-none"
      />
      <div className="flex flex-wrap items-center justify-between gap-3 px-2 pb-1 pt-1">
        {toolbar ? (
          <div className="flex min-w-0 flex-wrap items-center gap-2">{toolbar}</div>
        ) : (
          <p className="hidden text-xs text-slate-400 sm:block">{t("chat.enterHint")}</p>
        )}
        <div className="ml-auto flex items-center gap-3">
          <span id="chat-cost" aria-live="polite" className="inline-flex items-center gap-1 text-xs font-medium text-slate-500">
            {estimate || cost !== null || costPending ? <Icon name="coin" className="size-3.5 text-brand-600" /> : null}
            {estimate ?? (cost !== null ? plural("chat.cost", cost) : costPending ? <Skeleton className="h-3 w-20" /> : null)}
          </span>
          <button
            type="submit"
            data-testid="send-button"
            disabled={!canSend}
            className="inline-flex h-9 items-center gap-1.5 rounded-lg bg-brand-600 px-3.5 text-sm font-medium text-white shadow-sm transition-colors hover:bg-brand-700 disabled:cursor-not-allowed disabled:bg-slate-200 disabled:text-slate-400"
          >
            {sending ? <Spinner className="size-4" /> : <Icon name="send" className="size-4" />}
            {sending ? t("chat.sending") : t("chat.send")}
          </button>
        </div>
      </div>
    </form>
  );
}
