import { useEffect, useLayoutEffect, useRef } from "react";
import { Link, useLocation, useParams } from "wouter";
import { ApiError } from "../../api/errors";
import { useChatConfig, useMessages, useTokenBalance } from "../../api/queries";
import { ChatSidebar } from "../../components/chat/ChatSidebar";
import { Composer } from "../../components/chat/Composer";
import { InsufficientTokens } from "../../components/chat/InsufficientTokens";
import { MessageBubble, PendingReply } from "../../components/chat/MessageBubble";
import { CostCap, ModelPicker, priceLabel, QuoteText } from "../../components/chat/PricingControls";
import { ReplyFooter } from "../../components/chat/ReplyFooter";
import { preloadMarkdown } from "../../components/chat/ReplyText";
import { Alert } from "../../components/ui/Alert";
import { Icon } from "../../components/ui/Icon";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";
import { useChatPricing } from "./useChatPricing";
import { useChatSession } from "./useChatSession";

/** /chat (a new conversation, created on the first send) and /chat/:id. */
export default function ChatPage() {
  const i18n = useI18n();
  const { t, plural } = i18n;
  const [, navigate] = useLocation();
  const { id: chatId } = useParams<{ id?: string }>();

  const messages = useMessages(chatId);
  const config = useChatConfig();
  const balance = useTokenBalance();
  useEffect(preloadMarkdown, []);
  const inputRef = useRef<HTMLTextAreaElement>(null);
  const endRef = useRef<HTMLDivElement>(null);
  const { draft, setDraft, pending, showPending, problem, send } = useChatSession({
    chatId,
    available: balance.data?.available,
    inputRef,
  });
  const pricing = useChatPricing(chatId, draft, balance.data?.available);
  // What a reply costs is the server's to say; unknown (null) until it has. With a model
  // list, the chosen model's per-reply price; a usage-priced model has no flat cost.
  const price = pricing.model?.price;
  const cost = price ? (price.kind === "per_reply" ? price.per_reply : null) : (config.data?.reply_cost_tokens ?? null);
  const sendMessage = () =>
    void send({
      cost,
      model: pricing.model?.id,
      shortfall: pricing.shortfall,
      onChatCreated: pricing.onChatCreated,
    });

  const messageCount = messages.data?.length ?? 0;
  useLayoutEffect(() => {
    endRef.current?.scrollIntoView?.({ block: "end" });
  }, [messageCount, pending?.text, problem]);

  const startNewChat = () => {
    navigate("/chat");
    inputRef.current?.focus();
  };

  const list = messages.data ?? [];
  const notFound = messages.error instanceof ApiError && messages.error.code === "chat_not_found";
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
            <QueryError title={t("chat.loadError")} error={messages.error} onRetry={() => void messages.refetch()} />
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
                {cost === null ? t("chat.emptyBodyNoCost") : t("chat.emptyBody", { cost: plural("common.tokens", cost) })}
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
                  footer={
                    message.role === "user" || chatId === undefined ? undefined : (
                      <ReplyFooter
                        chatId={chatId}
                        messageId={String(message.id)}
                        cost={message.cost ?? message.tokens_charged ?? null}
                        refunded={message.refunded ?? false}
                        finishReason={message.finish_reason}
                      />
                    )
                  }
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
              <InsufficientTokens
                balance={problem.balance}
                required={problem.required}
                atLeast={problem.atLeast}
                returnPath={returnPath}
              />
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
                onSend={sendMessage}
                sending={pending !== null}
                cost={cost}
                costPending={config.isPending}
                maxLength={config.data?.max_message_chars}
                inputRef={inputRef}
                toolbar={
                  pricing.models.length && pricing.model ? (
                    <>
                      <ModelPicker
                        models={pricing.models}
                        value={pricing.model.id}
                        onChange={pricing.setModel}
                        disabled={pending !== null}
                      />
                      <CostCap value={pricing.cap} onSave={pricing.setCap} disabled={pending !== null} />
                    </>
                  ) : undefined
                }
                estimate={
                  pricing.quote ? (
                    <QuoteText quote={pricing.quote} />
                  ) : pricing.model ? (
                    priceLabel(i18n, pricing.model)
                  ) : undefined
                }
              />
            </div>
          </div>
        </div>
      </section>
    </div>
  );
}
