import { useMutation } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { Link } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { AuthLayout } from "./AuthLayout";

/** Asks for a reset link. The answer is the same whether or not the address has an account. */
export default function ForgotPasswordPage() {
  const i18n = useI18n();
  const { t } = i18n;
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
      footer={
        <Link href="/login" className="font-medium text-brand-700 hover:underline">
          {t("auth.forgot.back")}
        </Link>
      }
    >
      {send.isSuccess ? (
        <Alert tone="success" data-testid="reset-link-sent">{t("auth.forgot.sent")}</Alert>
      ) : (
        <form onSubmit={onSubmit} noValidate className="space-y-5">
          {send.isError ? <Alert tone="error" role="alert">{errorText(i18n, send.error)}</Alert> : null}
          <TextField
            label={t("auth.email")}
            name="email"
            type="email"
            autoComplete="email"
            value={email}
            onChange={(event) => setEmail(event.target.value)}
            error={fieldError}
          />
          <Button type="submit" size="lg" className="w-full" busy={send.isPending} disabled={send.isPending}>
            {t("auth.forgot.submit")}
          </Button>
        </form>
      )}
    </AuthLayout>
  );
}
