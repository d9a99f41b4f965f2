/**
 * The web client's words (English and Chinese) for the widgets, provided without the web
 * client's provider: a widget lives in someone else's page, so it neither stores a
 * language nor sets the document's.
 */
import { useMemo, type ReactNode } from "react";
import { I18nContext, translator, type I18n, type Lang } from "../../../../client/src/i18n/I18nProvider";

export type { Lang };

export function WidgetI18n({ lang, children }: { lang: Lang; children: ReactNode }) {
  const value = useMemo<I18n>(() => ({ ...translator(lang), setLang: () => {}, toggleLang: () => {} }), [lang]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}
