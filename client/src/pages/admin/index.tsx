import { useMe } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { Alert } from "../../components/ui/Alert";
import { Card } from "../../components/ui/Card";
import { Icon } from "../../components/ui/Icon";
import { PageHeader } from "../../components/ui/PageHeader";
import { Skeleton } from "../../components/ui/Skeleton";
import { useI18n } from "../../i18n/useI18n";

/** Placeholder until the admin dashboard lands; visible to admins only. */
export default function AdminPage() {
  const { t } = useI18n();
  const me = useMe();
  if (me.isPending) {
    return <PageContainer><Skeleton className="h-24 w-full" /></PageContainer>;
  }
  if (!me.data?.is_admin) {
    return (
      <PageContainer>
        <Alert tone="warning" data-testid="admin-forbidden">{t("admin.forbidden")}</Alert>
      </PageContainer>
    );
  }
  return (
    <PageContainer>
      <PageHeader title={t("admin.title")} />
      <Card className="flex items-start gap-4 p-6" data-testid="admin-placeholder">
        <span className="grid size-10 shrink-0 place-items-center rounded-xl bg-brand-50 text-brand-700">
          <Icon name="shield" className="size-5" />
        </span>
        <p className="text-sm text-slate-600">{t("admin.placeholder")}</p>
      </Card>
    </PageContainer>
  );
}
