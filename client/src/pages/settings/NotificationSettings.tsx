import { useState, type FormEvent } from "react";
import {
  useNotificationSettings,
  useSaveNotificationSettings,
  type NotificationSettings,
} from "../../api/billing";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { QueryError } from "../../components/ui/QueryError";
import { Skeleton } from "../../components/ui/Skeleton";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";

const MAX_THRESHOLDS = 3;

/** Low-balance thresholds (up to three) and email alerts on or off. */
export function NotificationSettingsCard() {
  const { t } = useI18n();
  const settings = useNotificationSettings();
  const save = useSaveNotificationSettings();
  return (
    <Card className="p-5" id="alerts" data-testid="notification-settings">
      <h2 className="text-lg font-semibold text-slate-900">{t("notifications.settingsTitle")}</h2>
      <p className="mt-1 text-sm text-slate-600">{t("notifications.settingsBody")}</p>
      {settings.isPending ? (
        <Skeleton className="mt-4 h-24 w-full" />
      ) : settings.isError ? (
        <QueryError className="mt-4" error={settings.error} onRetry={() => void settings.refetch()} />
      ) : (
        <SettingsForm key={JSON.stringify(settings.data)} initial={settings.data} save={save} />
      )}
    </Card>
  );
}

function SettingsForm({ initial, save }: {
  initial: NotificationSettings;
  save: ReturnType<typeof useSaveNotificationSettings>;
}) {
  const i18n = useI18n();
  const { t } = i18n;
  const [values, setValues] = useState(() =>
    Array.from({ length: MAX_THRESHOLDS }, (_, i) => (initial.low_balance_thresholds[i] ?? "").toString()),
  );
  const [email, setEmail] = useState(initial.email_alerts);
  const [invalid, setInvalid] = useState<number[]>([]);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    const bad = values.flatMap((raw, i) => (raw.trim() === "" || /^[1-9]\d*$/.test(raw.trim()) ? [] : [i]));
    setInvalid(bad);
    if (bad.length > 0) return;
    const thresholds = [...new Set(values.filter((raw) => raw.trim() !== "").map(Number))].sort((a, b) => b - a);
    save.mutate({ low_balance_thresholds: thresholds, email_alerts: email });
  };

  return (
    <form onSubmit={submit} noValidate className="mt-4 space-y-4">
      <div className="grid gap-3 sm:grid-cols-3">
        {values.map((value, i) => (
          <TextField key={i} label={t("notifications.threshold", { n: i + 1 })} inputMode="numeric"
            name={`threshold-${i + 1}`} value={value}
            error={invalid.includes(i) ? t("notifications.thresholdInvalid") : null}
            onChange={(event) => setValues((all) => all.map((v, j) => (j === i ? event.target.value : v)))} />
        ))}
      </div>
      <label className="flex items-center gap-2.5 text-sm text-slate-800">
        <input type="checkbox" data-testid="email-alerts" className="size-4 accent-brand-600" checked={email}
          onChange={(event) => setEmail(event.target.checked)} />
        {t("notifications.email")}
      </label>
      {save.isError ? <Alert tone="error" role="alert">{errorText(i18n, save.error)}</Alert> : null}
      {save.isSuccess ? <Alert tone="success" role="status">{t("notifications.saved")}</Alert> : null}
      <Button type="submit" data-testid="notification-settings-save" busy={save.isPending} disabled={save.isPending}>
        {t("notifications.save")}
      </Button>
    </form>
  );
}
