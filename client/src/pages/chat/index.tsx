import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "react";
import { Link, useLocation, useParams } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { ApiError } from "../../api/errors";
import { generateReply } from "../../api/generate";
import { queryKeys, refreshTokenState, useChatConfig, useMessages, useTokenBalance } from "../../api/queries";
import type { Message } from "../../api/types";
import { ChatSidebar } from "../../components/chat/ChatSidebar";
import { Composer } from "../../components/chat/Composer";
import { loadDraft, saveDraft } from "../../components/chat/drafts";
import { InsufficientTokens } from "../../components/chat/InsufficientTokens";
import { MessageBubble, PendingReply } from "../../components/chat/MessageBubble";
import { Alert } from "../../components/ui/Alert";
import { Icon } from "../../components/ui/Icon";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { newIdempotencyKey } from "../../lib/ids";

type Problem =
  | { kind: "insufficient"; balance: number; required: number }
  | { kind: "error"; message: string };

interface Pending {
  chatId: string;
  content: string;
  text: string;
}

/** Replies cost 1 token unless the server says otherwise. */
const DEFAULT_COST = 1;
const TITLE_LENGTH = 60;

function titleFrom(content: string): string {
  const line = content.trim().split("\n")[0] ?? "";
  return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line;
}

/** /chat (a new conversation, created on the first send) and /chat/:id. */
export default function ChatPage() {
  const i18n = useI18n();
  const { t, plural } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const { id: chatId } = useParams<{ id?: string }>();

  const messages = useMessages(chatId);
  const config = useChatConfig();
  const balance = useTokenBalance();
  const cost = config.data?.reply_cost_tokens ?? (config.isError ? DEFAULT_COST : null);

  const [draft, setDraftState] = useState(() => loadDraft(chatId));
  const [pending, setPending] = useState<Pending | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const endRef = useRef<HTMLDivElement>(null);
  // The chat this page created itself on the first send: arriving at its URL
  // must not reset the draft, the pending reply or an out-of-tokens prompt.
  const adoptedChat = useRef<string | null>(null);
  const shownChat = useRef(chatId);

  useEffect(() => {
    if (shownChat.current === chatId) return;
    shownChat.current = chatId;
    if (chatId !== undefined && chatId === adoptedChat.current) return;
    setDraftState(loadDraft(chatId));
    setProblem(null);
  }, [chatId]);

  const setDraft = useCallback(
    (text: string) => {
      setDraftState(text);
      saveDraft(shownChat.current, text);
    },
    [],
  );

  const messageCount = messages.data?.length ?? 0;
  useLayoutEffect(() => {
    endRef.current?.scrollIntoView?.({ block: "end" });
  }, [messageCount, pending?.text, problem]);

  const send = async () => {
    const content = draft.trim();
    if (!content || pending) return;
    setProblem(null);
    let target = chatId;
    setPending({ chatId: target ?? "", content, text: "" });
    try {
      if (target === undefined) {
        const chat = await unwrap(api.client.POST("/api/chats", { body: { title: titleFrom(content) } }));
        target = String(chat.id);
        adoptedChat.current = target;
        saveDraft(target, draft);
        saveDraft(undefined, "");
        setPending({ chatId: target, content, text: "" });
        void queryClient.invalidateQueries({ queryKey: queryKeys.chats });
        navigate(`/chat/${target}`);
      }
      const reply = await generateReply(api, target, content, {
        idempotencyKey: newIdempotencyKey(),
        onDelta: (piece) => setPending((prev) => (prev ? { ...prev, text: prev.text + piece } : prev)),
      });
      const key = queryKeys.messages(target);
      queryClient.setQueryData<Message[]>(key, (old = []) => {
        const known = new Set(old.map((message) => String(message.id)));
        const added = [reply.user_message, reply.ai_message].filter((m) => !known.has(String(m.id)));
        return [...old, ...added];
      });
      void queryClient.invalidateQueries({ queryKey: key });
      saveDraft(target, "");
      if (shownChat.current === target) setDraftState("");
    } catch (error) {
      if (error instanceof ApiError && error.code === "insufficient_tokens") {
        setProblem({
          kind: "insufficient",
          balance: error.num("balance") ?? balance.data?.available ?? 0,
          required: error.num("required") ?? cost ?? DEFAULT_COST,
        });
      } else {
        setProblem({ kind: "error", message: errorText(i18n, error) });
      }
    } finally {
      setPending(null);
      // Charged or not, the balance shown must be the server's.
      void refreshTokenState(queryClient);
      inputRef.current?.focus();
    }
  };

  const startNewChat = () => {
    navigate("/chat");
    inputRef.current?.focus();
  };

  const list = messages.data ?? [];
  const showPending = pending !== null && (pending.chatId === (chatId ?? "") || pending.chatId === adoptedChat.current);
  const notFound = messages.error instanceof ApiError && messages.error.status === 404;
  const returnPath = chatId ? `/chat/${chatId}` : "/chat";

  return (
    <div className="flex flex-1 flex-col md:flex-row">
      <ChatSidebar activeId={chatId} onNewChat={startNewChat} />
      <section aria-label={t("chat.listTitle")} className="flex min-w-0 flex-1 flex-col">
        <div className="mx-auto flex w-full max-w-3xl flex-1 flex-col px-4 pt-6">
          {notFound ? (
            <Alert tone="error" title={t("errors.chat_not_found")}>
              <Link href="/chat" className="font-medium underline">{t("chat.new")}</Link>
            </Alert>
          ) : messages.isError ? (
            <Alert tone="error" title={t("chat.loadError")}>
              <p>{errorText(i18n, messages.error)}</p>
            </Alert>
          ) : chatId !== undefined && messages.isPending && !showPending ? (
            <div className="space-y-4" aria-busy="true">
              <Skeleton className="ml-auto h-10 w-2/5 rounded-2xl" />
              <Skeleton className="h-20 w-3/5 rounded-2xl" />
              <Skeleton className="ml-auto h-10 w-1/3 rounded-2xl" />
            </div>
          ) : list.length === 0 && !showPending ? (
            <div className="flex flex-1 flex-col items-center justify-center py-12 text-center">
              <span className="grid size-14 place-items-center rounded-2xl bg-brand-100 text-brand-700">
                <Icon name="spark" className="size-7" />
              </span>
              <h1 className="mt-4 text-xl font-semibold text-slate-900">{t("chat.emptyTitle")}</h1>
              <p className="mt-1 max-w-sm text-sm text-slate-500">
                {t("chat.emptyBody", { cost: plural("common.tokens", cost ?? DEFAULT_COST) })}
              </p>
              {config.data ? (
                <p className="mt-3 text-xs text-slate-400">
                  {config.data.offline ? t("chat.offline") : t("chat.model", { model: config.data.model })}
                </p>
              ) : null}
            </div>
          ) : (
            <ol className="flex-1 space-y-4 pb-4" aria-live="polite">
              {list.map((message) => (
                <MessageBubble
                  key={String(message.id)}
                  role={message.role === "user" ? "user" : "ai"}
                  content={message.content}
                  createdAt={message.created_at}
                  interrupted={message.interrupted}
                  testId={message.role === "user" ? "user-message" : "ai-message"}
                />
              ))}
              {showPending && pending ? (
                <>
                  <MessageBubble role="user" content={pending.content} pending testId="user-message-pending" />
                  <PendingReply text={pending.text} />
                </>
              ) : null}
            </ol>
          )}

          {problem?.kind === "insufficient" ? (
            <div className="pb-2">
              <InsufficientTokens balance={problem.balance} required={problem.required} returnPath={returnPath} />
            </div>
          ) : problem?.kind === "error" ? (
            <Alert tone="error" role="alert" data-testid="chat-error" className="mb-2">{problem.message}</Alert>
          ) : null}

          {/* Scrolled to after each message; the margin keeps it clear of the composer. */}
          <div ref={endRef} className="scroll-mb-44" />

          <div className="sticky bottom-0 -mx-4 mt-auto bg-gradient-to-t from-slate-50 from-70% to-transparent px-4 pb-4 pt-4">
            <div>
              <Composer
                value={draft}
                onChange={setDraft}
                onSend={() => void send()}
                sending={pending !== null}
                cost={cost}
                maxLength={config.data?.max_message_chars}
                inputRef={inputRef}
              />
            </div>
          </div>
        </div>
      </section>
    </div>
  );
}
