import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type FormEvent } from "react";
import { Link, useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import type { AuthResult } from "../../api/types";
import { setSessionToken } from "../../auth/session";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { AuthLayout } from "./AuthLayout";
import { authLimitVars, describeAuthError, validateAuthFields, type AuthField, type FieldErrors } from "./authErrors";

type Mode = "login" | "register";

/** Sign-in and sign-up share one form; `mode` decides the fields and the endpoint. */
export function AuthForm({ mode }: { mode: Mode }) {
  const i18n = useI18n();
  const { t } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const [values, setValues] = useState({ username: "", email: "", password: "" });
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const refs = {
    username: useRef<HTMLInputElement>(null),
    email: useRef<HTMLInputElement>(null),
    password: useRef<HTMLInputElement>(null),
  };
  const fieldOrder: AuthField[] = mode === "register" ? ["username", "email", "password"] : ["username", "password"];

  const submit = useMutation({
    mutationFn: (): Promise<AuthResult> =>
      mode === "register"
        ? unwrap(api.client.POST("/api/auth/register", {
            body: {
              username: values.username.trim(),
              email: values.email.trim(),
              password: values.password,
              locale: i18n.lang,  // the language of the emails we send
            },
          }))
        : unwrap(api.client.POST("/api/auth/login", {
            body: { username: values.username.trim(), password: values.password },
          })),
    onSuccess: (result) => {
      queryClient.clear(); // nothing of a previous account may linger
      setSessionToken(result.access_token);
      navigate("/chat");
    },
    onError: (error) => {
      const { fields, form } = describeAuthError(i18n, error);
      setFieldErrors(fields);
      setFormError(form);
      const first = fieldOrder.find((name) => fields[name]);
      if (first) refs[first].current?.focus();
    },
  });

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (submit.isPending) return;
    const errors = validateAuthFields(t, values, mode);
    setFieldErrors(errors);
    setFormError(null);
    const first = fieldOrder.find((name) => errors[name]);
    if (first) {
      refs[first].current?.focus();
      return;
    }
    submit.mutate();
  };

  const update = (name: AuthField) => (event: { target: { value: string } }) => {
    setValues((prev) => ({ ...prev, [name]: event.target.value }));
    if (fieldErrors[name]) setFieldErrors((prev) => ({ ...prev, [name]: undefined }));
  };

  const isRegister = mode === "register";
  return (
    <AuthLayout
      title={t(isRegister ? "auth.register.title" : "auth.login.title")}
      subtitle={t(isRegister ? "auth.register.subtitle" : "auth.login.subtitle")}
      footer={
        <>
          {t(isRegister ? "auth.register.hasAccount" : "auth.login.noAccount")}{" "}
          <Link
            href={isRegister ? "/login" : "/register"}
            className="font-medium text-brand-700 hover:text-brand-800 hover:underline"
          >
            {t(isRegister ? "auth.register.toLogin" : "auth.login.toRegister")}
          </Link>
        </>
      }
    >
      <form onSubmit={onSubmit} noValidate className="space-y-5">
        {formError ? (
          <Alert tone="error" role="alert">
            {formError}
          </Alert>
        ) : null}
        <TextField
          ref={refs.username}
          label={t("auth.username")}
          name="username"
          autoComplete="username"
          autoCapitalize="none"
          spellCheck={false}
          value={values.username}
          onChange={update("username")}
          error={fieldErrors.username}
          hint={isRegister ? t("auth.usernameHint", authLimitVars) : t("auth.usernameOrEmailHint")}
        />
        {isRegister ? (
          <TextField
            ref={refs.email}
            label={t("auth.email")}
            name="email"
            type="email"
            autoComplete="email"
            value={values.email}
            onChange={update("email")}
            error={fieldErrors.email}
          />
        ) : null}
        <TextField
          ref={refs.password}
          label={t("auth.password")}
          name="password"
          type="password"
          autoComplete={isRegister ? "new-password" : "current-password"}
          value={values.password}
          onChange={update("password")}
          error={fieldErrors.password}
          hint={isRegister ? t("auth.passwordHint", authLimitVars) : undefined}
        />
        <Button type="submit" size="lg" className="w-full" busy={submit.isPending} disabled={submit.isPending}>
          {submit.isPending
            ? t("auth.submitting")
            : t(isRegister ? "auth.register.submit" : "auth.login.submit")}
        </Button>
        {isRegister ? null : (
          <p className="text-center text-sm">
            <Link href="/forgot-password" className="text-brand-700 hover:underline">
              {t("auth.forgot")}
            </Link>
          </p>
        )}
      </form>
    </AuthLayout>
  );
}
