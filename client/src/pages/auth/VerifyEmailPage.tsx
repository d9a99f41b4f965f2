import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import { Link } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { queryKeys } from "../../api/queries";
import { useSessionToken } from "../../auth/session";
import { Alert } from "../../components/ui/Alert";
import { buttonClasses } from "../../components/ui/Button";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { AuthLayout } from "./AuthLayout";

/** Reads `?token=` once and drops it from the address bar (no later Referer carries it). */
export function useLinkToken(): string {
  const token = useRef<string | null>(null);
  if (token.current === null) {
    const url = new URL(window.location.href);
    token.current = url.searchParams.get("token") ?? "";
    if (url.searchParams.has("token")) {
      url.searchParams.delete("token");
      window.history.replaceState(window.history.state, "", url.pathname + url.search + url.hash);
    }
  }
  return token.current;
}

// A link works once: React's development double-run of effects must not spend it twice.
const spent = new Map<string, Promise<{ bonus_tokens: number }>>();

/** The page the emailed link opens: confirms the address, which grants the bonus once. */
export default function VerifyEmailPage() {
  const i18n = useI18n();
  const { t } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const signedIn = useSessionToken() !== null;
  const token = useLinkToken();
  const verify = useMutation({
    mutationFn: () => {
      let call = spent.get(token);
      if (!call) {
        call = unwrap(api.client.POST("/api/auth/verify-email", { body: { token } }));
        spent.set(token, call);
      }
      return call;
    },
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: queryKeys.tokenBalance });
      void queryClient.invalidateQueries({ queryKey: queryKeys.me });
    },
  });
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    verify.mutate();
  }, [verify]);

  const next = signedIn ? "/chat" : "/login";
  return (
    <AuthLayout
      title={t("auth.verify.title")}
      subtitle=""
      footer={null}
    >
      {verify.isSuccess ? (
        <div className="space-y-5" data-testid="verify-email-success">
          <Alert tone="success" title={t("auth.verify.done")}>
            {t("auth.verify.bonus", { n: verify.data.bonus_tokens })}
          </Alert>
          <Link href={next} className={buttonClasses("primary", "lg", "w-full")}>
            {t(signedIn ? "auth.verify.continue" : "auth.verify.signIn")}
          </Link>
        </div>
      ) : verify.isError ? (
        <div className="space-y-5" data-testid="verify-email-error">
          <Alert tone="error" role="alert">{errorText(i18n, verify.error)}</Alert>
          <Link href={next} className={buttonClasses("secondary", "lg", "w-full")}>
            {t(signedIn ? "auth.verify.continue" : "auth.verify.signIn")}
          </Link>
        </div>
      ) : (
        <p className="flex items-center gap-2 text-slate-600">
          <Spinner className="size-5" /> {t("auth.verify.working")}
        </p>
      )}
    </AuthLayout>
  );
}
