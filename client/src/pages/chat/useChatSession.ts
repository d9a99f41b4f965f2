import { useQueryClient } from "@tanstack/react-query";
import { useCallback, useEffect, useRef, useState, type RefObject } from "react";
import { useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { ApiError } from "../../api/errors";
import { generateReply } from "../../api/generate";
import { pricingKeys } from "../../api/pricing";
import { queryKeys, refreshTokenState } from "../../api/queries";
import type { Message } from "../../api/types";
import { loadDraft, saveDraft } from "../../components/chat/drafts";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { newIdempotencyKey } from "../../lib/ids";

export type Problem =
  | { kind: "insufficient"; balance: number; required: number | null; atLeast?: boolean }
  | { kind: "error"; message: string };

export interface Pending {
  chatId: string;
  content: string;
  text: string;
}

const TITLE_LENGTH = 60;

function titleFrom(content: string): string {
  const line = content.trim().split("\n")[0] ?? "";
  return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1)}…` : line;
}

interface Options {
  /** The route's chat; undefined on /chat, where the first send creates one. */
  chatId: string | undefined;
  /** The balance, as the server last said (for the out-of-tokens prompt). */
  available: number | undefined;
  inputRef: RefObject<HTMLTextAreaElement | null>;
}

/** What the chat's pricing adds to a send (see useChatPricing). */
export interface SendOptions {
  /** Tokens per reply as the server last said, for the out-of-tokens prompt; null when unknown or not flat. */
  cost?: number | null;
  /** The model chosen for this chat (sent with the message); undefined for the server's default. */
  model?: string;
  /** Tokens this message needs at least when the balance cannot cover them (from the quote), else null. */
  shortfall?: (content: string) => number | null;
  /** Called with a chat this page has just created, before its first reply is asked for. */
  onChatCreated?: (chatId: string) => Promise<void>;
}

/**
 * The chat page's state: the draft (kept per chat), the reply being written, and what
 * went wrong. Sending creates the chat on /chat, streams the reply and always ends with
 * the server's balance.
 */
export function useChatSession({ chatId, available, inputRef }: Options) {
  const i18n = useI18n();
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();

  const [draft, setDraftState] = useState(() => loadDraft(chatId));
  const [pending, setPending] = useState<Pending | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
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

  const setDraft = useCallback((text: string) => {
    setDraftState(text);
    saveDraft(shownChat.current, text);
  }, []);

  const send = async ({ cost = null, model, shortfall, onChatCreated }: SendOptions = {}) => {
    const content = draft.trim();
    if (!content || pending) return;
    // The quote already says the balance is too low: say so now rather than after a 402.
    const needed = shortfall?.(content) ?? null;
    if (needed !== null) {
      setProblem({ kind: "insufficient", balance: available ?? 0, required: needed, atLeast: true });
      return;
    }
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
        await onChatCreated?.(target);
      }
      const reply = await generateReply(api, target, content, {
        idempotencyKey: newIdempotencyKey(),
        model,
        onDelta: (piece) => setPending((prev) => (prev ? { ...prev, text: prev.text + piece } : prev)),
      });
      const key = queryKeys.messages(target);
      queryClient.setQueryData<Message[]>(key, (old = []) => {
        const known = new Set(old.map((message) => String(message.id)));
        const added = [reply.user_message, reply.ai_message].filter((m) => !known.has(String(m.id)));
        return [...old, ...added];
      });
      void queryClient.invalidateQueries({ queryKey: key });
      // The person's recent average per model (replies left) has moved.
      void queryClient.invalidateQueries({ queryKey: pricingKeys.models });
      saveDraft(target, "");
      if (shownChat.current === target) setDraftState("");
    } catch (error) {
      if (error instanceof ApiError && error.code === "insufficient_tokens") {
        setProblem({
          kind: "insufficient",
          balance: error.num("balance") ?? available ?? 0,
          required: error.num("required") ?? cost,
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

  const showPending =
    pending !== null && (pending.chatId === (chatId ?? "") || pending.chatId === adoptedChat.current);
  return { draft, setDraft, pending, showPending, problem, send };
}
