import { ApiError } from "../api/errors";
import type { I18n } from "../i18n/I18nProvider";

/** The person's-language text for any error: by code first, then the server's words. */
export function errorText(i18n: Pick<I18n, "t" | "has">, error: unknown): string {
  if (error instanceof ApiError) {
    const key = `errors.${error.code}`;
    if (i18n.has(key)) return i18n.t(key);
    if (error.message) return error.message;
  }
  return i18n.t("errors.unknown");
}
