/** Minor units of `currency` (cents) as money, with `extraDigits` beyond the currency's own. */
function formatMinor(minor: number, currency: string, locale: string, extraDigits: number): string {
  const code = currency.toUpperCase();
  const digits = fractionDigits(code);
  return new Intl.NumberFormat(locale, {
    style: "currency",
    currency: code,
    minimumFractionDigits: digits,
    maximumFractionDigits: digits + extraDigits,
  }).format(minor / 10 ** digits);
}

/** Money arrives in minor units (cents) with an ISO currency code. */
export function formatMoney(minor: number, currency: string, locale: string): string {
  return formatMinor(minor, currency, locale, 0);
}

/** Price of a single token, shown with enough precision to compare packs. */
export function formatUnitPrice(minorPerToken: number, currency: string, locale: string): string {
  return formatMinor(minorPerToken, currency, locale, 2);
}

export function fractionDigits(currency: string): number {
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions()
      .maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

export function formatDateTime(iso: string, locale: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(date);
}

export function formatTime(iso: string, locale: string): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return new Intl.DateTimeFormat(locale, { timeStyle: "short" }).format(date);
}

export function formatSigned(n: number): string {
  return n > 0 ? `+${n}` : n < 0 ? `−${Math.abs(n)}` : "0";
}

export function formatNumber(n: number, locale: string): string {
  return new Intl.NumberFormat(locale).format(n);
}

/** A calendar day from the server ("YYYY-MM-DD", UTC) as a short month/day label. */
export function formatDay(day: string, locale: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return day;
  return new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" }).format(date);
}

/** A calendar date ("1 Feb", "Feb 1", "2月1日"), with the year only when it is not this year's. */
export function formatDate(iso: string, locale: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options: Intl.DateTimeFormatOptions = { month: "short", day: "numeric" };
  if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
  return new Intl.DateTimeFormat(locale, options).format(date);
}
