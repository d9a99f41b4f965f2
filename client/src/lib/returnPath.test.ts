import { describe, expect, it } from "vitest";

import { paymentLink, safeReturnPath } from "./returnPath";

const ORIGIN = "https://tokenbank.example";

/** What the payment page does: read `return` from its own query string. */
function fromQuery(query: string): string | null {
  return safeReturnPath(new URLSearchParams(query).get("return"), ORIGIN);
}

// Known open-redirect payloads (as the decoded `return` value the page reads).
const BYPASSES = [
  "//evil.example/phish",
  "///evil.example",
  "////evil.example",
  "/\t/evil.example/phish",
  "/\n/evil.example",
  "/\r\n/evil.example",
  "/\u0000/evil.example",
  "/\u001f/evil.example",
  "/\u007f/evil.example",
  "/\u0085/evil.example",
  "/\\evil.example",
  "\\/evil.example",
  "/\\/evil.example",
  "\\\\evil.example",
  "/..//evil.example",
  "/.//evil.example",
  "/chat/../..//evil.example",
  "/%2e%2e//evil.example",
  "https://evil.example",
  "http:evil.example",
  "https:/evil.example",
  "javascript:alert(1)",
  "JaVaScRiPt:alert(1)",
  "data:text/html,<script>alert(1)</script>",
  " //evil.example",
  "\t//evil.example",
  "evil.example",
  "@evil.example",
  "/" + "a".repeat(5000),
];

describe("safeReturnPath", () => {
  it.each(BYPASSES)("refuses %j", (raw) => {
    expect(safeReturnPath(raw, ORIGIN)).toBeNull();
  });

  it("refuses the reported bypass exactly as the page reads it", () => {
    expect(fromQuery("payment_intent=pi_1&return=/%09/evil.example/phish")).toBeNull();
    expect(fromQuery("return=/%0a/evil.example")).toBeNull();
    expect(fromQuery("return=/%5Cevil.example")).toBeNull();
    expect(fromQuery("return=%2F%2Fevil.example")).toBeNull();
  });

  it.each([
    ["/chat", "/chat"],
    ["/chat/42", "/chat/42"],
    ["/chat/42?draft=1#end", "/chat/42?draft=1#end"],
    ["/history", "/history"],
    ["/chat/./42", "/chat/42"],
    ["/a/%2F%2Fevil.example", "/a/%2F%2Fevil.example"],
  ])("keeps the same-site path %j", (raw, kept) => {
    expect(safeReturnPath(raw, ORIGIN)).toBe(kept);
  });

  it("never returns something a browser would resolve to another origin", () => {
    const candidates = [...BYPASSES, "/chat", "/a/%2F%2Fevil.example", "/x?next=//evil.example"];
    for (const raw of candidates) {
      const kept = safeReturnPath(raw, ORIGIN);
      if (kept !== null) expect(new URL(kept, ORIGIN).origin).toBe(ORIGIN);
    }
  });

  it("refuses empty input and defaults to the page's own origin", () => {
    expect(safeReturnPath(null)).toBeNull();
    expect(safeReturnPath("")).toBeNull();
    expect(safeReturnPath("/chat")).toBe("/chat");
    expect(safeReturnPath("//evil.example")).toBeNull();
  });

  it("builds payment links that carry a safe path back", () => {
    expect(paymentLink("/chat/7", "starter")).toBe("/payment?tier=starter&return=/chat/7");
    expect(paymentLink(null)).toBe("/payment");
  });
});
