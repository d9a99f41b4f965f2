/**
 * A fresh Idempotency-Key for one attempt. `crypto.randomUUID` only exists in
 * secure contexts, so plain-http LAN setups fall back to getRandomValues.
 */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
