import { createContext, useCallback, useEffect, useMemo, useState, type ReactNode } from "react";
import { readStored, writeStored } from "../lib/storage";
import { en, zh, type Dictionary, type MessageKey, type PluralBase } from "./messages";

export type Lang = "en" | "zh";
export type Vars = Record<string, string | number>;
export type Translate = (key: MessageKey, vars?: Vars) => string;

export const LANG_STORAGE_KEY = "tokenbank.lang";
const dictionaries: Record<Lang, Dictionary> = { en, zh };
const locales: Record<Lang, string> = { en: "en-US", zh: "zh-CN" };

export interface I18n {
  lang: Lang;
  /** BCP 47 locale for Intl formatting. */
  locale: string;
  setLang: (lang: Lang) => void;
  toggleLang: () => void;
  t: Translate;
  /**
   * The language's plural form of `base` for `n` (Intl.PluralRules), `n` formatted for the
   * locale; `vars` fills any other placeholders.
   */
  plural: (base: PluralBase, n: number, vars?: Vars) => string;
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

type Translator = Pick<I18n, "lang" | "locale" | "t" | "plural" | "has">;

/** Text for one language; the provider adds switching. */
export function translator(lang: Lang): Translator {
  const dict: Partial<Record<MessageKey, string>> = dictionaries[lang];
  const locale = locales[lang];
  const rules = new Intl.PluralRules(locale);
  const numbers = new Intl.NumberFormat(locale);
  // Every key but a plural form the language lacks is present (Dictionary's type says so).
  const t: Translate = (key, vars) => fill(dict[key] ?? key, vars);
  return {
    lang,
    locale,
    t,
    plural: (base, n, vars) => {
      const form = `${base}.${rules.select(n)}` as MessageKey;
      return t(form in dict ? form : `${base}.other`, { ...vars, n: numbers.format(n) });
    },
    has: (key: string): key is MessageKey => key in dict,
  };
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

  const value = useMemo<I18n>(
    () => ({ ...translator(lang), setLang, toggleLang: () => setLang(lang === "en" ? "zh" : "en") }),
    [lang, setLang],
  );

  return <I18nContext.Provider value={value}>{children}</I18nContext.Provider>;
}
