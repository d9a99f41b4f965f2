import { createContext, useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { readStored, writeStored } from "../lib/storage";
import { en, zh, type MessageKey } from "./messages";

export type Lang = "en" | "zh";
export type Vars = Record<string, string | number>;
export type Translate = (key: MessageKey, vars?: Vars) => string;

export const LANG_STORAGE_KEY = "tokenbank.lang";
const dictionaries: Record<Lang, Record<MessageKey, string>> = { en, zh };
const locales: Record<Lang, string> = { en: "en-US", zh: "zh-CN" };

export interface I18n {
  lang: Lang;
  /** BCP 47 locale for Intl formatting. */
  locale: string;
  setLang: (lang: Lang) => void;
  toggleLang: () => void;
  t: Translate;
  /** Picks the `.one` / `.other` form of a key by count. */
  plural: (base: "common.tokens" | "chat.cost", n: number) => string;
  /** True when `key` exists in the dictionary (for codes coming from the server). */
  has: (key: string) => key is MessageKey;
}

export const I18nContext = createContext<I18n | null>(null);

function initialLang(): Lang {
  return readStored("local", LANG_STORAGE_KEY) === "zh" ? "zh" : "en";
}

function fill(template: string, vars: Vars | undefined): string {
  if (!vars) return template;
  return template.replace(/\{(\w+)\}/g, (match, name: string) =>
    name in vars ? String(vars[name]) : match,
  );
}

export function I18nProvider({ children }: { children: ReactNode }) {
  const [lang, setLangState] = useState<Lang>(initialLang);

  const setLang = useCallback((next: Lang) => {
    writeStored("local", LANG_STORAGE_KEY, next);
    setLangState(next);
  }, []);

  useEffect(() => {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  }, [lang]);

  const value = useMemo<I18n>(() => {
    const dict = dictionaries[lang];
    const t: Translate = (key, vars) => fill(dict[key], vars);
    return {
      lang,
      locale: locales[lang],
      setLang,
      toggleLang: () => setLang(lang === "en" ? "zh" : "en"),
      t,
      plural: (base, n) => t(n === 1 ? `${base}.one` : `${base}.other`, { n }),
      has: (key: string): key is MessageKey => key in dict,
    };
  }, [lang, setLang]);

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}
