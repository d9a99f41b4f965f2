import type { ReactNode } from "react";
import { useI18n } from "../../i18n/useI18n";
import { formatTime } from "../../lib/format";
import { Icon } from "../ui/Icon";
import { ReplyText } from "./ReplyText";

interface MessageBubbleProps {
  role: "user" | "ai";
  content: string;
  createdAt?: string;
  /** Still streaming or waiting for the server. */
  pending?: boolean;
  /** A reply cut short (the connection or the AI failed mid-reply): saved as far as it got. */
  interrupted?: boolean;
  testId?: string;
  /** Under an AI reply: what it cost and the way to ask for a refund. */
  footer?: ReactNode;
}

export function MessageBubble({
  role,
  content,
  createdAt,
  pending = false,
  interrupted = false,
  testId,
  footer,
}: MessageBubbleProps) {
  const { t, locale } = useI18n();
  const mine = role === "user";
  return (
    <li className={`flex animate-fade-in gap-3 ${mine ? "justify-end" : "justify-start"}`}>
      {!mine ? (
        <span aria-hidden="true" className="mt-1 grid size-8 shrink-0 place-items-center rounded-full bg-brand-100 text-brand-700">
          <Icon name="spark" className="size-4" />
        </span>
      ) : null}
      <div className={`flex max-w-[85%] flex-col sm:max-w-[75%] ${mine ? "items-end" : "items-start"}`}>
        <span className="sr-only">{mine ? t("chat.you") : t("chat.ai")}: </span>
        <div
          data-testid={testId}
          className={[
            "min-w-0 max-w-full break-words rounded-2xl px-4 py-2.5 text-[15px] leading-relaxed",
            mine
              ? "whitespace-pre-wrap rounded-br-md bg-brand-600 text-white"
              : "rounded-bl-md bg-white text-slate-800 shadow-sm ring-1 ring-slate-200",
            pending && mine ? "opacity-80" : "",
          ].join(" ")}
        >
          {/* The person's words are shown as typed; the AI's are Markdown. */}
          {mine ? content : <ReplyText text={content} />}
        </div>
        {interrupted ? (
          <span data-testid="message-interrupted" className="mt-1 px-1 text-[11px] font-medium text-amber-700">
            {t("chat.interrupted")}
          </span>
        ) : null}
        {createdAt || footer ? (
          <div className="mt-1 flex flex-wrap items-center gap-x-2 gap-y-1 px-1 text-[11px] text-slate-400">
            {createdAt ? <time dateTime={createdAt}>{formatTime(createdAt, locale)}</time> : null}
            {footer}
          </div>
        ) : null}
      </div>
    </li>
  );
}

/** The AI's reply while it is being written. */
export function PendingReply({ text }: { text: string }) {
  const { t } = useI18n();
  return (
    <li className="flex animate-fade-in gap-3" aria-live="polite">
      <span aria-hidden="true" className="mt-1 grid size-8 shrink-0 place-items-center rounded-full bg-brand-100 text-brand-700">
        <Icon name="spark" className="size-4" />
      </span>
      <div
        data-testid="ai-message-pending"
        className="min-w-0 max-w-[85%] break-words rounded-2xl rounded-bl-md bg-white px-4 py-2.5 text-[15px] leading-relaxed text-slate-800 shadow-sm ring-1 ring-slate-200 sm:max-w-[75%]"
      >
        {text ? (
          <ReplyText text={text} />
        ) : (
          <span className="flex items-center gap-1 py-1.5" role="status">
            <span className="sr-only">{t("chat.thinking")}</span>
            <span className="size-2 animate-bounce rounded-full bg-slate-400 [animation-delay:-0.3s]" />
            <span className="size-2 animate-bounce rounded-full bg-slate-400 [animation-delay:-0.15s]" />
            <span className="size-2 animate-bounce rounded-full bg-slate-400" />
          </span>
        )}
      </div>
    </li>
  );
}
