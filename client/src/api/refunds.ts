import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useApi } from "./ApiProvider";
import { unwrap } from "./client";
import { queryKeys, refreshTokenState, toChatId } from "./queries";
import type { RefundBody } from "./types";

/** Ask for an AI reply's tokens back, then refresh the chat and the balance. */
export function useRefundReply(chatId: string) {
  const api = useApi();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: ({ messageId, ...body }: RefundBody & { messageId: number }) =>
      unwrap(
        api.client.POST("/api/chats/{chat_id}/messages/{message_id}/refund", {
          params: { path: { chat_id: toChatId(chatId), message_id: messageId } },
          body,
        }),
      ),
    onSettled: async () => {
      // Also after a 409 already_refunded: the list then shows it as refunded.
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: queryKeys.messages(chatId) }),
        refreshTokenState(queryClient),
      ]);
    },
  });
}
