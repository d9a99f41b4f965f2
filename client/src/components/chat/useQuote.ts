import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useApi } from "../../api/ApiProvider";
import { fetchNewChatQuote, fetchQuote, type Quote } from "../../api/pricing";
import { useDebounced } from "../../lib/useDebounced";

/** How long the person must pause typing before the quote is asked for again. */
export const QUOTE_DEBOUNCE_MS = 400;

export interface QuoteState {
  quote: Quote | null;
  /** The text `quote` was made for (the draft may have moved on since). */
  quotedText: string | null;
}

/**
 * The server's quote for the draft as the person types: asked for once typing pauses,
 * again when the model or the cap changes. Nothing is asked for an empty draft. Before
 * the chat exists (the new-chat composer) the quote needs no chat: it is asked for with
 * the model and cap the new chat will be given.
 */
export function useQuote(chatId: string | undefined, draft: string, model: string | null, cap: number | null): QuoteState {
  const api = useApi();
  const text = useDebounced(draft.trim(), QUOTE_DEBOUNCE_MS);
  const enabled = model !== null && text.length > 0 && draft.trim().length > 0;
  const query = useQuery({
    queryKey: ["quote", chatId ?? "", model ?? "", cap, text] as const,
    queryFn: async () => ({
      quote:
        chatId === undefined
          ? await fetchNewChatQuote(api, text, model ?? undefined, cap)
          : await fetchQuote(api, chatId, text, model ?? undefined),
      text,
    }),
    enabled,
    placeholderData: keepPreviousData,
    staleTime: 30_000,
    retry: false,
  });
  if (!enabled || !query.data) return { quote: null, quotedText: null };
  return { quote: query.data.quote, quotedText: query.data.text };
}
