import { useMe } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { Alert } from "../../components/ui/Alert";
import { Badge } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { PageHeader } from "../../components/ui/PageHeader";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { authLimitVars } from "../auth/authErrors";
import { NotificationSettingsCard } from "./NotificationSettings";
import { useChangePassword, useSignOutEverywhere } from "./useSettings";

function ChangePassword() {
  const i18n = useI18n();
  const { t } = i18n;
  const { values, setField, fieldError, submit, change } = useChangePassword();
  return (
    <Card className="p-5">
      <h2 className="text-lg font-semibold text-slate-900">{t("settings.password.title")}</h2>
      <form onSubmit={submit} noValidate className="mt-4 max-w-md space-y-4">
        {change.isSuccess ? (
          <Alert tone="success" data-testid="password-changed">{t("settings.password.done")}</Alert>
        ) : null}
        {change.isError ? <Alert tone="error" role="alert">{errorText(i18n, change.error)}</Alert> : null}
        <TextField
          label={t("settings.password.current")}
          name="current-password"
          type="password"
          autoComplete="current-password"
          value={values.current}
          onChange={(event) => setField("current", event.target.value)}
        />
        <TextField
          label={t("settings.password.new")}
          name="new-password"
          type="password"
          autoComplete="new-password"
          value={values.next}
          onChange={(event) => setField("next", event.target.value)}
          error={fieldError}
          hint={t("auth.passwordHint", authLimitVars)}
        />
        <Button type="submit" busy={change.isPending} disabled={change.isPending}>
          {t("settings.password.submit")}
        </Button>
      </form>
    </Card>
  );
}

function SignOutEverywhere() {
  const i18n = useI18n();
  const { t } = i18n;
  const everywhere = useSignOutEverywhere();
  return (
    <Card className="p-5">
      <h2 className="text-lg font-semibold text-slate-900">{t("settings.sessions.title")}</h2>
      <p className="mt-1 text-sm text-slate-600">{t("settings.sessions.body")}</p>
      {everywhere.isError ? (
        <Alert tone="error" role="alert" className="mt-3">{errorText(i18n, everywhere.error)}</Alert>
      ) : null}
      <Button
        variant="danger"
        className="mt-4"
        data-testid="logout-everywhere"
        busy={everywhere.isPending}
        disabled={everywhere.isPending}
        onClick={() => everywhere.mutate()}
      >
        {t("settings.sessions.submit")}
      </Button>
    </Card>
  );
}

export default function SettingsPage() {
  const { t } = useI18n();
  const me = useMe();
  return (
    <PageContainer className="space-y-5">
      <PageHeader title={t("settings.title")} subtitle={t("settings.subtitle")} />
      <Card className="p-5">
        <h2 className="text-lg font-semibold text-slate-900">{t("settings.account")}</h2>
        {me.data ? (
          <dl className="mt-3 grid gap-2 text-sm sm:grid-cols-[10rem_1fr]">
            <dt className="text-slate-500">{t("auth.username")}</dt>
            <dd className="text-slate-900">{me.data.username}</dd>
            <dt className="text-slate-500">{t("auth.email")}</dt>
            <dd className="flex items-center gap-2 text-slate-900">
              {me.data.email}
              <Badge tone={me.data.email_verified ? "success" : "warning"}>
                {t(me.data.email_verified ? "settings.emailVerified" : "settings.emailUnverified")}
              </Badge>
            </dd>
          </dl>
        ) : null}
      </Card>
      <NotificationSettingsCard />
      <ChangePassword />
      <SignOutEverywhere />
    </PageContainer>
  );
}
