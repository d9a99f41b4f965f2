import { useApi } from "../../api/ApiProvider";
import { getSessionToken } from "../../auth/session";
import { useI18n } from "../../i18n/useI18n";
import { Icon } from "../ui/Icon";

/** Switches English ⇄ 中文; the choice is remembered in localStorage and, when signed
 * in, on the account (the emails we send follow it). */
export function LanguageToggle() {
  const { t, lang, toggleLang } = useI18n();
  const api = useApi();
  const onClick = () => {
    toggleLang();
    if (getSessionToken() !== null) {
      const locale = lang === "en" ? "zh" : "en";
      void api.client.PATCH("/api/auth/me", { body: { locale } }).catch(() => undefined);
    }
  };
  return (
    <button
      type="button"
      data-testid="language-toggle"
      onClick={onClick}
      aria-label={t("nav.languageLabel")}
      className="inline-flex h-9 items-center gap-1.5 rounded-lg px-2 text-sm sm:px-2.5 font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900"
    >
      <Icon name="globe" className="hidden size-4 sm:block" />
      <span lang={lang === "en" ? "zh-CN" : "en"}>{t("nav.language")}</span>
    </button>
  );
}
