/**
 * Only same-site paths may be used as a "return to" target; anything else
 * (another origin, protocol-relative URLs) would be an open redirect.
 */
export function safeReturnPath(raw: string | null | undefined): string | null {
  if (!raw) return null;
  if (!raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\")) return null;
  return raw;
}

/** Link to the payment page that brings the person back to `returnPath` afterwards. */
export function paymentLink(returnPath: string | null, tier?: string): string {
  const parts: string[] = [];
  if (tier) parts.push(`tier=${encodeURIComponent(tier)}`);
  // Kept readable (slashes unescaped): the path is already a safe same-site path.
  if (returnPath) parts.push(`return=${encodeURI(returnPath)}`);
  return parts.length ? `/payment?${parts.join("&")}` : "/payment";
}
