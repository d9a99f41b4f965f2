import { Link, Route, Switch, useLocation } from "wouter";
import { useMe } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { Icon, type IconName } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { Skeleton } from "../../components/ui/Skeleton";
import type { MessageKey } from "../../i18n/messages";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { ApiKeysTab } from "./ApiKeysTab";
import { OverviewTab } from "./OverviewTab";
import { PaymentsTab } from "./PaymentsTab";
import { UserPage } from "./UserPage";
import { UsersTab } from "./UsersTab";
import { WebhooksTab } from "./WebhooksTab";

interface Tab {
  href: string;
  label: MessageKey;
  icon: IconName;
}

const tabs: Tab[] = [
  { href: "/admin", label: "admin.tab.overview", icon: "spark" },
  { href: "/admin/users", label: "admin.tab.users", icon: "user" },
  { href: "/admin/payments", label: "admin.tab.payments", icon: "card" },
  { href: "/admin/webhooks", label: "admin.tab.webhooks", icon: "inbox" },
  { href: "/admin/api-keys", label: "admin.tab.apiKeys", icon: "lock" },
];

function isActive(location: string, href: string): boolean {
  if (href === "/admin") return location === "/admin" || location === "/admin/";
  return location === href || location.startsWith(`${href}/`);
}

function AdminTabs() {
  const { t } = useI18n();
  const [location] = useLocation();
  return (
    <nav aria-label={t("admin.tabsLabel")} className="mb-6">
      <ul className="grid grid-cols-5 gap-1 rounded-xl bg-slate-100 p-1 sm:inline-flex">
        {tabs.map((tab) => {
          const active = isActive(location, tab.href);
          return (
            <li key={tab.href} className="min-w-0">
              <Link
                href={tab.href}
                aria-current={active ? "page" : undefined}
                data-testid={`admin-tab-${tab.href.split("/")[2] ?? "overview"}`}
                className={[
                  "flex h-9 items-center justify-center gap-1.5 whitespace-nowrap rounded-lg px-1 text-[13px] font-medium transition-colors sm:px-3 sm:text-sm",
                  active ? "bg-white text-slate-900 shadow-sm" : "text-slate-600 hover:text-slate-900",
                ].join(" ")}
              >
                <Icon name={tab.icon} className="hidden size-4 sm:block" />
                <span className="truncate">{t(tab.label)}</span>
              </Link>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}

/** /admin and its sections, for admins only (the API says no to anyone else as well). */
export default function AdminPage() {
  const i18n = useI18n();
  const { t } = i18n;
  const me = useMe();
  if (me.isPending) {
    return <PageContainer><Skeleton className="h-24 w-full" /></PageContainer>;
  }
  if (me.isError) {
    return (
      <PageContainer>
        <Alert tone="error" title={t("admin.loadError")}>
          <p>{errorText(i18n, me.error)}</p>
          <Button size="sm" variant="secondary" className="mt-2" onClick={() => void me.refetch()}>
            {t("common.retry")}
          </Button>
        </Alert>
      </PageContainer>
    );
  }
  if (!me.data.is_admin) {
    return (
      <PageContainer>
        <Alert tone="warning" title={t("admin.forbiddenTitle")} data-testid="admin-forbidden">
          <p>{t("admin.forbidden")}</p>
          <Link href="/chat" className="mt-1 inline-block font-medium underline underline-offset-2">
            {t("notFound.home")}
          </Link>
        </Alert>
      </PageContainer>
    );
  }
  return (
    <PageContainer>
      <PageHeader title={t("admin.title")} subtitle={t("admin.subtitle")} />
      <AdminTabs />
      <Switch>
        <Route path="/admin"><OverviewTab /></Route>
        <Route path="/admin/users"><UsersTab /></Route>
        <Route path="/admin/users/:id">{(params) => <UserPage rawId={params.id} />}</Route>
        <Route path="/admin/payments"><PaymentsTab /></Route>
        <Route path="/admin/webhooks"><WebhooksTab /></Route>
        <Route path="/admin/api-keys"><ApiKeysTab /></Route>
        <Route>
          <Alert tone="warning" title={t("notFound.title")}>
            <Link href="/admin" className="font-medium underline underline-offset-2">{t("admin.backToOverview")}</Link>
          </Alert>
        </Route>
      </Switch>
    </PageContainer>
  );
}
