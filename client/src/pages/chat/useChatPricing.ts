import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useApi } from "../../api/ApiProvider";
import { queryKeys, useChats } from "../../api/queries";
import { patchChat, useModels, useUpdateChat, type ModelInfo } from "../../api/pricing";
import { setChosenModel, useChosenModel } from "../../components/chat/chosenModel";
import { useQuote } from "../../components/chat/useQuote";

/**
 * The chat's model and cap (saved on the chat; on /chat kept here until the first send
 * creates it), the quote for the draft, and the check that stops a send the balance
 * cannot cover.
 */
export function useChatPricing(chatId: string | undefined, draft: string, available: number | undefined) {
  const api = useApi();
  const queryClient = useQueryClient();
  const models = useModels();
  const chats = useChats();
  const chosen = useChosenModel();
  const update = useUpdateChat(chatId);
  const [newChatCap, setNewChatCap] = useState<number | null>(null);

  const chat = chats.data?.find((c) => String(c.id) === chatId);
  const items = models.data?.items ?? [];
  const known = (id: string | null | undefined): ModelInfo | undefined =>
    id ? items.find((model) => model.id === id) : undefined;
  const model = known(chat?.model) ?? known(chosen) ?? known(models.data?.default) ?? items[0] ?? null;
  const cap = chatId === undefined ? newChatCap : (chat?.cost_cap ?? null);

  // The top bar counts replies left on the model of the chat in view.
  const shownModel = model?.id ?? null;
  useEffect(() => {
    if (shownModel !== null) setChosenModel(shownModel);
  }, [shownModel]);

  const { quote, quotedText } = useQuote(chatId, draft, model?.id ?? null, cap);

  const setModel = (id: string) => {
    setChosenModel(id);
    if (chatId !== undefined) update.mutate({ model: id });
  };
  const setCap = (next: number | null) => {
    if (chatId === undefined) setNewChatCap(next);
    else update.mutate({ cost_cap: next });
  };

  /**
   * On /chat the first send creates the chat: give it the model (unless it is the
   * server's default) and the cap chosen so far, before its first reply.
   */
  const onChatCreated = async (created: string) => {
    const changes = {
      ...(model && model.id !== models.data?.default ? { model: model.id } : {}),
      ...(newChatCap !== null ? { cost_cap: newChatCap } : {}),
    };
    if (Object.keys(changes).length === 0) return;
    await patchChat(api, created, changes);
    setNewChatCap(null);
    void queryClient.invalidateQueries({ queryKey: queryKeys.chats });
  };

  /** Tokens the quote says this message needs at least, when that is more than the balance. */
  const shortfall = (content: string): number | null => {
    if (!quote || quotedText !== content || available === undefined) return null;
    return quote.min > available ? quote.min : null;
  };

  return {
    models: items,
    model,
    setModel,
    cap,
    setCap,
    /** The quote for the draft (null for an empty draft, or before the server has answered). */
    quote: draft.trim() ? quote : null,
    onChatCreated,
    shortfall,
  };
}
