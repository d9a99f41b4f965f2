import { Link } from "wouter";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { AuthLayout } from "./AuthLayout";
import { authLimitVars } from "./authErrors";
import { useAuthForm, type Mode } from "./useAuthForm";

/** Sign-in and sign-up share one form; `mode` decides the fields and the endpoint. */
export function AuthForm({ mode }: { mode: Mode }) {
  const { t } = useI18n();
  const { values, fieldErrors, formError, refs, submit, onSubmit, update } = useAuthForm(mode);
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
