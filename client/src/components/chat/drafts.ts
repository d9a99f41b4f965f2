/**
 * Unsent messages survive a trip to the payment page (and reloads) in
 * sessionStorage, one draft per chat; "new" is the not-yet-created chat.
 */
import { readStored, writeStored } from "../../lib/storage";

const PREFIX = "tokenbank.draft.";

export function draftKey(chatId: string | undefined): string {
  return `${PREFIX}${chatId ?? "new"}`;
}

export function loadDraft(chatId: string | undefined): string {
  return readStored("session", draftKey(chatId)) ?? "";
}

export function saveDraft(chatId: string | undefined, text: string): void {
  writeStored("session", draftKey(chatId), text ? text : null);
}
