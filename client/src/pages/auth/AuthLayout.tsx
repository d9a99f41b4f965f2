import type { ReactNode } from "react";
import { BrandMark } from "../../components/layout/BrandMark";
import { LanguageToggle } from "../../components/layout/LanguageToggle";
import { Icon } from "../../components/ui/Icon";
import { useI18n } from "../../i18n/useI18n";

/** Split screen on wide displays (story on the left, form on the right), form only on phones. */
export function AuthLayout({ title, subtitle, children, footer }: {
  title: string;
  subtitle: string;
  children: ReactNode;
  footer: ReactNode;
}) {
  const { t } = useI18n();
  const points = [t("auth.sidePoint1"), t("auth.sidePoint2"), t("auth.sidePoint3")];
  return (
    <div className="grid min-h-dvh lg:grid-cols-2">
      <aside className="relative hidden overflow-hidden bg-gradient-to-br from-brand-700 via-brand-800 to-slate-900 p-12 text-white lg:flex lg:flex-col lg:justify-between">
        <div className="flex items-center gap-2 text-lg font-semibold">
          <BrandMark onBrand />
          {t("app.name")}
        </div>
        <div className="max-w-md space-y-6">
          <p className="text-3xl font-semibold leading-tight">{t("auth.sideTitle")}</p>
          <ul className="space-y-3 text-brand-50/90">
            {points.map((point) => (
              <li key={point} className="flex gap-3">
                <span className="mt-0.5 grid size-6 shrink-0 place-items-center rounded-full bg-white/15">
                  <Icon name="check" className="size-4" />
                </span>
                {point}
              </li>
            ))}
          </ul>
        </div>
        <p className="text-sm text-brand-100/70">{t("app.tagline")}</p>
        <div aria-hidden="true" className="pointer-events-none absolute -right-24 -top-24 size-96 rounded-full bg-white/5" />
        <div aria-hidden="true" className="pointer-events-none absolute -bottom-32 right-20 size-72 rounded-full bg-brand-500/10" />
      </aside>

      <div className="flex flex-col">
        <div className="flex items-center justify-between px-4 py-3 sm:px-6">
          <span className="flex items-center gap-2 font-semibold text-slate-900 lg:invisible">
            <BrandMark />
            {t("app.name")}
          </span>
          <LanguageToggle />
        </div>
        <main id="main" className="flex flex-1 items-center justify-center px-4 pb-12 pt-4 sm:px-6">
          <div className="w-full max-w-sm animate-fade-in">
            <h1 className="text-2xl font-semibold tracking-tight text-slate-900">{title}</h1>
            <p className="mt-1.5 text-sm text-slate-500">{subtitle}</p>
            <div className="mt-8">{children}</div>
            <p className="mt-8 text-center text-sm text-slate-500">{footer}</p>
          </div>
        </main>
      </div>
    </div>
  );
}
