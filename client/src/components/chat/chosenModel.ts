/**
 * The model the person last chose in a chat, kept in localStorage: new chats start
 * with it, and the balance in the top bar counts replies left on it.
 */
import { useSyncExternalStore } from "react";
import { readStored, writeStored } from "../../lib/storage";

const KEY = "tokenbank.model";
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  const onStorage = (event: StorageEvent) => {
    if (event.key === KEY) listener();
  };
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", onStorage);
  };
}

export function readChosenModel(): string | null {
  return readStored("local", KEY);
}

export function setChosenModel(model: string | null): void {
  if (readChosenModel() === model) return;
  writeStored("local", KEY, model);
  for (const listener of listeners) listener();
}

/** The last chosen model id, or null before any choice. */
export function useChosenModel(): string | null {
  return useSyncExternalStore(subscribe, readChosenModel, () => null);
}
