import { Link } from "wouter";
import { PageContainer } from "../components/layout/AppShell";
import { buttonClasses } from "../components/ui/Button";
import { useI18n } from "../i18n/useI18n";

export default function NotFoundPage() {
  const { t } = useI18n();
  return (
    <PageContainer className="flex flex-col items-center py-24 text-center">
      <p className="text-5xl font-bold text-brand-600">404</p>
      <h1 className="mt-3 text-xl font-semibold text-slate-900">{t("notFound.title")}</h1>
      <p className="mt-1 text-sm text-slate-500">{t("notFound.body")}</p>
      <Link href="/chat" className={buttonClasses("primary", "md", "mt-6")}>{t("notFound.home")}</Link>
    </PageContainer>
  );
}
