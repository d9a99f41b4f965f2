/**
 * The signed-in session is just the access token, kept in localStorage so a
 * reload keeps you signed in. Components subscribe through `useSessionToken`.
 */
import { useSyncExternalStore } from "react";
import { readStored, writeStored } from "../lib/storage";

export const TOKEN_STORAGE_KEY = "tokenbank.token";

type Listener = () => void;
const listeners = new Set<Listener>();
let current: string | null = readStored("local", TOKEN_STORAGE_KEY);

export function getSessionToken(): string | null {
  return current;
}

export function setSessionToken(token: string | null): void {
  if (token === current) return;
  current = token;
  writeStored("local", TOKEN_STORAGE_KEY, token);
  listeners.forEach((listener) => listener());
}

/** Re-reads storage: another tab may have signed in or out. */
export function reloadSessionToken(): void {
  const stored = readStored("local", TOKEN_STORAGE_KEY);
  if (stored !== current) {
    current = stored;
    listeners.forEach((listener) => listener());
  }
}

function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  const onStorage = (event: StorageEvent) => {
    if (event.key === TOKEN_STORAGE_KEY || event.key === null) reloadSessionToken();
  };
  window.addEventListener("storage", onStorage);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("storage", onStorage);
  };
}

export function useSessionToken(): string | null {
  return useSyncExternalStore(subscribe, getSessionToken, getSessionToken);
}
