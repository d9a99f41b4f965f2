import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { setSessionToken } from "../../auth/session";
import { Alert } from "../../components/ui/Alert";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { authLimitVars, validateAuthFields } from "./authErrors";
import { AuthLayout } from "./AuthLayout";
import { BackToSignIn, OneFieldForm } from "./ResetFlow";
import { useLinkToken } from "./VerifyEmailPage";

/** The emailed reset link opens this: a new password, every session ended, signed in here. */
export default function ResetPasswordPage() {
  const { t } = useI18n();
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const token = useLinkToken();
  const [password, setPassword] = useState("");
  const [fieldError, setFieldError] = useState<string | null>(null);
  const reset = useMutation({
    mutationFn: () =>
      unwrap(
        api.client.POST("/api/auth/password-reset/complete", {
          body: { token, new_password: password },
        }),
      ),
    onSuccess: (result) => {
      queryClient.clear();
      setSessionToken(result.access_token);
      navigate("/chat");
    },
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const problem = validateAuthFields(t, { username: "-", password }, "register").password;
    setFieldError(problem ?? null);
    if (!problem) reset.mutate();
  };
  return (
    <AuthLayout
      title={t("auth.reset.title")}
      subtitle={t("auth.reset.subtitle")}
      footer={<BackToSignIn />}
    >
      {!token ? (
        <Alert tone="error" role="alert">{t("auth.reset.missing")}</Alert>
      ) : (
        <OneFieldForm request={reset} onSubmit={onSubmit} submitLabel={t("auth.reset.submit")}>
          <TextField
            label={t("auth.reset.newPassword")}
            name="new-password"
            type="password"
            autoComplete="new-password"
            value={password}
            onChange={(event) => setPassword(event.target.value)}
            error={fieldError}
            hint={t("auth.passwordHint", authLimitVars)}
          />
        </OneFieldForm>
      )}
    </AuthLayout>
  );
}
