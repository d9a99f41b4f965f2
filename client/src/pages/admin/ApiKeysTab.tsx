import { useState, type FormEvent } from "react";
import {
  API_KEY_SCOPES,
  useApiKeys,
  useCreateApiKey,
  useRevokeApiKey,
  useRotateApiKey,
  type ApiKey,
  type ApiKeyCreated,
  type ApiKeyScope,
} from "../../api/apiKeys";
import { Alert } from "../../components/ui/Alert";
import { Badge } from "../../components/ui/Badge";
import { Button } from "../../components/ui/Button";
import { Card } from "../../components/ui/Card";
import { ConfirmDialog } from "../../components/ui/ConfirmDialog";
import { DataTable } from "../../components/ui/DataTable";
import { Skeleton } from "../../components/ui/Skeleton";
import { TextField } from "../../components/ui/TextField";
import { useI18n } from "../../i18n/useI18n";
import { QueryError } from "../../components/ui/QueryError";
import { errorText } from "../../lib/errorText";
import { formatDateTime } from "../../lib/format";

type Pending = { kind: "rotate" | "revoke"; key: ApiKey } | null;

/** A new secret, shown once: the server keeps only its hash. */
function SecretOnce({ made, onDone }: { made: ApiKeyCreated; onDone: () => void }) {
  const { t } = useI18n();
  const [copied, setCopied] = useState(false);
  const copy = () => {
    void navigator.clipboard?.writeText(made.secret).then(() => setCopied(true));
  };
  return (
    <Alert tone="warning" title={t("admin.apiKeys.secretTitle", { name: made.key.name })} data-testid="api-key-secret">
      <p>{t("admin.apiKeys.secretOnce")}</p>
      <code className="mt-2 block break-all rounded bg-white px-2 py-1.5 font-mono text-xs text-slate-900"
        data-testid="api-key-secret-value">{made.secret}</code>
      <div className="mt-2 flex gap-2">
        <Button size="sm" variant="secondary" onClick={copy}>
          {copied ? t("admin.apiKeys.copied") : t("admin.apiKeys.copy")}
        </Button>
        <Button size="sm" variant="ghost" onClick={onDone}>{t("admin.apiKeys.stored")}</Button>
      </div>
    </Alert>
  );
}

function CreateKeyForm({ onCreated }: { onCreated: (made: ApiKeyCreated) => void }) {
  const i18n = useI18n();
  const { t } = i18n;
  const create = useCreateApiKey();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<ApiKeyScope[]>(["read", "charge"]);
  const toggle = (scope: ApiKeyScope) =>
    setScopes((now) => (now.includes(scope) ? now.filter((s) => s !== scope) : [...now, scope]));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim() || scopes.length === 0 || create.isPending) return;
    create.mutate({ name: name.trim(), scopes }, {
      onSuccess: (made) => {
        setName("");
        onCreated(made);
      },
    });
  };
  return (
    <Card className="p-5">
      <form onSubmit={submit} className="space-y-4" aria-labelledby="api-key-create-title">
        <h3 id="api-key-create-title" className="text-sm font-semibold text-slate-900">{t("admin.apiKeys.create")}</h3>
        <TextField label={t("admin.apiKeys.name")} value={name} maxLength={100} required
          onChange={(event) => setName(event.target.value)} data-testid="api-key-name" />
        <fieldset>
          <legend className="text-sm font-medium text-slate-700">{t("admin.apiKeys.scopes")}</legend>
          <div className="mt-2 flex flex-wrap gap-3">
            {API_KEY_SCOPES.map((scope) => (
              <label key={scope} className="flex items-center gap-1.5 text-sm text-slate-700">
                <input type="checkbox" checked={scopes.includes(scope)} onChange={() => toggle(scope)}
                  data-testid={`api-key-scope-${scope}`} />
                <span className="font-mono">{scope}</span>
                <span className="text-xs text-slate-500">{t(`admin.apiKeys.scope.${scope}`)}</span>
              </label>
            ))}
          </div>
        </fieldset>
        {create.isError ? <Alert tone="error"><p>{errorText(i18n, create.error)}</p></Alert> : null}
        <Button type="submit" busy={create.isPending} disabled={!name.trim() || scopes.length === 0 || create.isPending}
          data-testid="api-key-create">
          {t("admin.apiKeys.createButton")}
        </Button>
      </form>
    </Card>
  );
}

function KeysTable({ keys, onAsk }: { keys: ApiKey[]; onAsk: (pending: Pending) => void }) {
  const { t, locale } = useI18n();
  return (
    <DataTable caption={t("admin.apiKeys.caption")} testId="api-keys" columns={[
      { label: t("admin.apiKeys.name"), className: "px-4 py-2" },
      { label: t("admin.apiKeys.key"), className: "px-4 py-2" },
      { label: t("admin.apiKeys.scopes"), className: "px-4 py-2" },
      { label: t("admin.apiKeys.created"), className: "px-4 py-2" },
      { label: <span className="sr-only">{t("admin.apiKeys.actions")}</span>, className: "px-4 py-2" },
    ]}>
      {keys.map((key) => (
        <tr key={key.id} data-testid={`api-key-${key.id}`}>
          <td className="px-4 py-2 font-medium text-slate-900">{key.name}</td>
          <td className="px-4 py-2 font-mono text-xs">{key.prefix}…</td>
          <td className="px-4 py-2 font-mono text-xs">{key.scopes.join(", ")}</td>
          <td className="px-4 py-2 text-xs text-slate-600">{formatDateTime(key.created_at, locale)}</td>
          <td className="px-4 py-2 text-right">
            {key.active ? (
              <span className="inline-flex gap-2">
                <Button size="sm" variant="secondary" onClick={() => onAsk({ kind: "rotate", key })}
                  data-testid={`api-key-rotate-${key.id}`}>{t("admin.apiKeys.rotate")}</Button>
                <Button size="sm" variant="danger" onClick={() => onAsk({ kind: "revoke", key })}
                  data-testid={`api-key-revoke-${key.id}`}>{t("admin.apiKeys.revoke")}</Button>
              </span>
            ) : (
              <Badge tone="neutral">{t("admin.apiKeys.revoked")}</Badge>
            )}
          </td>
        </tr>
      ))}
    </DataTable>
  );
}

/** /admin/api-keys: keys for other apps' servers to call /api/v1 with. */
export function ApiKeysTab() {
  const i18n = useI18n();
  const { t } = i18n;
  const keys = useApiKeys();
  const rotate = useRotateApiKey();
  const revoke = useRevokeApiKey();
  const [made, setMade] = useState<ApiKeyCreated | null>(null);
  const [pending, setPending] = useState<Pending>(null);
  const confirm = () => {
    if (!pending) return;
    if (pending.kind === "rotate") {
      rotate.mutate(pending.key.id, { onSuccess: setMade, onSettled: () => setPending(null) });
    } else {
      revoke.mutate(pending.key.id, { onSettled: () => setPending(null) });
    }
  };
  const failed = rotate.error ?? revoke.error;
  const rows = keys.data?.items ?? [];
  return (
    <section aria-labelledby="admin-api-keys-title" className="space-y-4">
      <h2 id="admin-api-keys-title" className="sr-only">{t("admin.tab.apiKeys")}</h2>
      <p className="text-sm text-slate-600">{t("admin.apiKeys.intro")}</p>
      {made ? <SecretOnce made={made} onDone={() => setMade(null)} /> : null}
      <CreateKeyForm onCreated={setMade} />
      {failed ? <Alert tone="error"><p>{errorText(i18n, failed)}</p></Alert> : null}
      {keys.isPending ? (
        <Card className="space-y-3 p-5" aria-busy="true">
          {[0, 1, 2].map((i) => <Skeleton key={i} className="h-8 w-full" />)}
        </Card>
      ) : keys.isError ? (
        <QueryError title={t("admin.apiKeys.loadError")} error={keys.error} onRetry={() => void keys.refetch()} />
      ) : rows.length === 0 ? (
        <Card className="px-6 py-12 text-center text-sm text-slate-600" data-testid="api-keys">
          {t("admin.apiKeys.empty")}
        </Card>
      ) : (
        <Card className="overflow-x-auto"><KeysTable keys={rows} onAsk={setPending} /></Card>
      )}
      {pending ? (
        <ConfirmDialog
          title={t(pending.kind === "rotate" ? "admin.apiKeys.rotateTitle" : "admin.apiKeys.revokeTitle",
            { name: pending.key.name })}
          confirmLabel={t(pending.kind === "rotate" ? "admin.apiKeys.rotate" : "admin.apiKeys.revoke")}
          cancelLabel={t("admin.apiKeys.cancel")}
          tone={pending.kind === "revoke" ? "danger" : "primary"}
          busy={rotate.isPending || revoke.isPending}
          onConfirm={confirm}
          onCancel={() => setPending(null)}
        >
          <p>{t(pending.kind === "rotate" ? "admin.apiKeys.rotateBody" : "admin.apiKeys.revokeBody")}</p>
        </ConfirmDialog>
      ) : null}
    </section>
  );
}
