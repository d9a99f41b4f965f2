/**
 * The web client's words (English and Chinese) for the widgets, provided without the web
 * client's provider: a widget lives in someone else's page, so it neither stores a
 * language nor sets the document's.
 */
import { useMemo, type ReactNode } from "react";
import { I18nContext, type I18n, type Lang, type Vars } from "../../../../client/src/i18n/I18nProvider";
import { en, zh, type MessageKey } from "../../../../client/src/i18n/messages";

const dictionaries: Record<Lang, Record<MessageKey, string>> = { en, zh };
const locales: Record<Lang, string> = { en: "en-US", zh: "zh-CN" };

export type { Lang };

function fill(template: string, vars: Vars | undefined): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (match, name: string) => (name in vars ? String(vars[name]) : match));
}

export function WidgetI18n({ lang, children }: { lang: Lang; children: ReactNode }) {
  const value = useMemo<I18n>(() => {
    const dict = dictionaries[lang];
    const t = (key: MessageKey, vars?: Vars) => fill(dict[key], vars);
    return {
      lang,
      locale: locales[lang],
      setLang: () => {},
      toggleLang: () => {},
      t,
      plural: (base, n) => t(n === 1 ? `${base}.one` : `${base}.other`, { n }),
      has: (key: string): key is MessageKey => key in dict,
    };
  }, [lang]);
  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}
