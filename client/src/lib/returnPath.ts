/**
 * Only same-site paths may be used as a "return to" target; anything else would
 * be an open redirect. The candidate is resolved exactly as the browser will
 * resolve the link (`new URL` against this page's origin) and kept only if it
 * stays on this origin; control characters (a tab or newline the URL parser
 * silently drops, turning `/\t/evil.example` into `//evil.example`), backslashes
 * (read as `/` by browsers) and protocol-relative `//` are refused outright.
 */
const MAX_RETURN_PATH = 2048;
// C0 and C1 control characters, DEL, and the backslash.
const REFUSED_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\\]/;

export function safeReturnPath(
  raw: string | null | undefined,
  origin: string = window.location.origin,
): string | null {
  if (!raw || raw.length > MAX_RETURN_PATH) return null;
  if (REFUSED_CHARACTERS.test(raw)) return null;
  if (!raw.startsWith("/") || raw.startsWith("//")) return null;
  let url: URL;
  try {
    url = new URL(raw, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin) return null;
  const path = `${url.pathname}${url.search}${url.hash}`;
  // Dot segments can collapse into a protocol-relative path ("/..//evil.example").
  if (path.startsWith("//")) return null;
  return path;
}

/** Link to the payment page that brings the person back to `returnPath` afterwards. */
export function paymentLink(returnPath: string | null, tier?: string): string {
  const parts: string[] = [];
  if (tier) parts.push(`tier=${encodeURIComponent(tier)}`);
  // Kept readable (slashes unescaped): the path is already a safe same-site path.
  if (returnPath) parts.push(`return=${encodeURI(returnPath)}`);
  return parts.length ? `/payment?${parts.join("&")}` : "/payment";
}
