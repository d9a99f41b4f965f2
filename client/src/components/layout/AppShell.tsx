import { useMutation } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { useMe } from "../../api/queries";
import { useI18n } from "../../i18n/useI18n";
import { useAutoTopupRefill } from "../payment/useAutoTopupRefill";
import { Alert } from "../ui/Alert";
import { TabNavigation } from "./TabNavigation";

/** Until the address is confirmed: a reminder (the welcome bonus waits for it). */
function VerifyEmailBanner() {
  const { t } = useI18n();
  const api = useApi();
  const me = useMe();
  const resend = useMutation({
    mutationFn: () => unwrap(api.client.POST("/api/auth/verify-email/resend")),
  });
  if (!me.data || me.data.email_verified) return null;
  return (
    <div className="mx-auto w-full max-w-6xl px-4 pt-3">
      <Alert tone="info" data-testid="verify-email-banner">
        {t("auth.verifyBanner")}{" "}
        {resend.isSuccess ? (
          t("auth.verifyBanner.sent")
        ) : (
          <button
            type="button"
            className="font-medium text-brand-700 underline"
            disabled={resend.isPending}
            onClick={() => resend.mutate()}
          >
            {t("auth.verifyBanner.resend")}
          </button>
        )}
      </Alert>
    </div>
  );
}

export function AppShell({ children }: { children: ReactNode }) {
  const { t } = useI18n();
  useAutoTopupRefill();
  return (
    <div className="flex min-h-dvh flex-col">
      <a
        href="#main"
        className="sr-only focus:not-sr-only focus:absolute focus:left-4 focus:top-3 focus:z-50 focus:rounded-lg focus:bg-white focus:px-3 focus:py-2 focus:shadow"
      >
        {t("app.skipToContent")}
      </a>
      <TabNavigation />
      <VerifyEmailBanner />
      <main id="main" tabIndex={-1} className="flex flex-1 flex-col focus:outline-none">
        {children}
      </main>
    </div>
  );
}

/** Standard page width and padding. */
export function PageContainer({ children, className = "" }: { children: ReactNode; className?: string }) {
  return <div className={`mx-auto w-full max-w-6xl px-4 py-6 sm:py-8 ${className}`}>{children}</div>;
}
