import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { Alert } from "../../components/ui/Alert";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { AuthLayout } from "./AuthLayout";
import { BackToSignIn, OneFieldForm } from "./ResetFlow";

/** Asks for a reset link. The answer is the same whether or not the address has an account. */
export default function ForgotPasswordPage() {
  const { t } = useI18n();
  const api = useApi();
  const [email, setEmail] = useState("");
  const [fieldError, setFieldError] = useState<string | null>(null);
  const send = useMutation({
    mutationFn: () =>
      unwrap(api.client.POST("/api/auth/password-reset", { body: { email: email.trim() } })),
  });
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email.trim())) {
      setFieldError(t("validation.email"));
      return;
    }
    setFieldError(null);
    send.mutate();
  };
  return (
    <AuthLayout
      title={t("auth.forgot.title")}
      subtitle={t("auth.forgot.subtitle")}
      footer={<BackToSignIn />}
    >
      {send.isSuccess ? (
        <Alert tone="success" data-testid="reset-link-sent">{t("auth.forgot.sent")}</Alert>
      ) : (
        <OneFieldForm request={send} onSubmit={onSubmit} submitLabel={t("auth.forgot.submit")}>
          <TextField
            label={t("auth.email")}
            name="email"
            type="email"
            autoComplete="email"
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            error={fieldError}
          />
        </OneFieldForm>
      )}
    </AuthLayout>
  );
}
