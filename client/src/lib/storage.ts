/**
 * Web Storage access that never throws: private browsing modes and locked-down
 * browsers can refuse storage, and the app must keep working without it.
 */
function area(kind: "local" | "session"): Storage | null {
  try {
    return kind === "local" ? window.localStorage : window.sessionStorage;
  } catch {
    return null;
  }
}

export function readStored(kind: "local" | "session", key: string): string | null {
  try {
    return area(kind)?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

export function writeStored(kind: "local" | "session", key: string, value: string | null): void {
  try {
    const storage = area(kind);
    if (value === null) storage?.removeItem(key);
    else storage?.setItem(key, value);
  } catch {
    // Quota or permission errors only cost persistence, never the current action.
  }
}
