import { useQueryClient } from "@tanstack/react-query";
import { Link, useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { useMe } from "../../api/queries";
import { signOut } from "../../auth/signOut";
import type { MessageKey } from "../../i18n/messages";
import { useI18n } from "../../i18n/useI18n";
import { useMediaQuery } from "../../lib/useMediaQuery";
import { RepliesLeft } from "../payment/RepliesLeft";
import { TokenBalance } from "../payment/TokenBalance";
import { Icon, type IconName } from "../ui/Icon";
import { BrandMark } from "./BrandMark";
import { LanguageToggle } from "./LanguageToggle";
import { NotificationsBell } from "./NotificationsBell";

interface Tab {
  href: string;
  label: MessageKey;
  icon: IconName;
  testId: string;
}

const tabs: Tab[] = [
  { href: "/chat", label: "nav.chat", icon: "chat", testId: "nav-chat" },
  { href: "/payment", label: "nav.payment", icon: "card", testId: "nav-payment" },
  { href: "/history", label: "nav.history", icon: "history", testId: "nav-history" },
  { href: "/subscription", label: "nav.subscription", icon: "spark", testId: "nav-subscription" },
];

function isActive(location: string, href: string): boolean {
  return location === href || location.startsWith(`${href}/`);
}

/**
 * The one navigation bar (rendered once, so every data-testid is unique):
 * logo, tabs, balance, language and logout. On phones the tabs wrap to a
 * second row under the logo and balance.
 */
export function TabNavigation() {
  const { t } = useI18n();
  const [location, navigate] = useLocation();
  const queryClient = useQueryClient();
  const api = useApi();
  const me = useMe();
  const narrow = useMediaQuery("(max-width: 639px)");
  const visibleTabs = me.data?.is_admin
    ? [...tabs, { href: "/admin", label: "nav.admin", icon: "shield", testId: "nav-admin" } as Tab]
    : tabs;

  const logout = async () => {
    await signOut(api, queryClient);
    navigate("/login");
  };

  return (
    <header className="sticky top-0 z-30 border-b border-slate-200 bg-white/90 backdrop-blur">
      <div className="mx-auto flex max-w-6xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-2.5">
        <Link href="/chat" className="order-1 flex items-center gap-2 rounded-lg font-semibold text-slate-900">
          <BrandMark />
          <span className="text-lg tracking-tight">{t("app.name")}</span>
        </Link>

        <nav aria-label={t("nav.main")} className="order-3 -mx-1 w-full sm:order-2 sm:mx-0 sm:w-auto">
          <ul className="flex gap-1">
            {visibleTabs.map((tab) => {
              const active = isActive(location, tab.href);
              return (
                <li key={tab.href} className="flex-1 sm:flex-none">
                  <Link
                    href={tab.href}
                    data-testid={tab.testId}
                    aria-current={active ? "page" : undefined}
                    className={[
                      "flex h-9 items-center justify-center gap-1.5 whitespace-nowrap rounded-lg px-2 text-sm font-medium transition-colors sm:px-3",
                      active
                        ? "bg-brand-50 text-brand-800"
                        : "text-slate-600 hover:bg-slate-100 hover:text-slate-900",
                    ].join(" ")}
                  >
                    <Icon name={tab.icon} className="hidden size-4 sm:block" />
                    {t(tab.label)}
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>

        <div className="order-2 ml-auto flex items-center gap-1 sm:order-3 sm:gap-2">
          <TokenBalance compact={narrow}>{narrow ? null : <RepliesLeft />}</TokenBalance>
          <NotificationsBell />
          <LanguageToggle />
          <Link
            href="/settings"
            data-testid="nav-settings"
            aria-label={t("nav.settings")}
            title={t("nav.settings")}
            className="inline-flex h-9 items-center gap-1.5 rounded-lg px-2.5 text-sm font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900"
          >
            <Icon name="user" className="size-4" />
          </Link>
          <button
            type="button"
            data-testid="logout"
            onClick={() => void logout()}
            title={me.data ? t("nav.signedInAs", { name: me.data.username }) : undefined}
            className="inline-flex h-9 items-center gap-1.5 rounded-lg px-2.5 text-sm font-medium text-slate-600 hover:bg-slate-100 hover:text-slate-900"
          >
            <Icon name="logout" className="size-4" />
            <span className="sr-only sm:not-sr-only">{t("nav.logout")}</span>
          </button>
        </div>
      </div>
    </header>
  );
}
