import { useId, useRef, useState, type FormEvent } from "react";
import { useAdjustTokens } from "../../api/admin";
import { ApiError, fieldProblems } from "../../api/errors";
import { limits } from "../../api/limits.gen";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { formatNumber, formatSigned } from "../../lib/format";
import { newIdempotencyKey } from "../../lib/ids";
import { Alert } from "../ui/Alert";
import { Button } from "../ui/Button";
import { Card } from "../ui/Card";
import { ConfirmDialog } from "../ui/ConfirmDialog";
import { TextField } from "../ui/TextField";

// The server's limits (from its schema): checked here first so mistakes show at once.
const { amount: AMOUNT_LIMITS, reason: REASON_LIMITS } = limits.AdminTokensRequest;
export const MAX_ADJUST_TOKENS = AMOUNT_LIMITS.maximum;
export const REASON_MIN = REASON_LIMITS.minLength;
export const REASON_MAX = REASON_LIMITS.maxLength;

interface FieldErrors {
  amount?: string;
  reason?: string;
}

interface Request {
  amount: number;
  reason: string;
  /** Made when the request is confirmed; sending it again cannot grant twice. */
  idempotencyKey: string;
}

type Outcome =
  | { kind: "success"; amount: number; available: number }
  | { kind: "error"; message: string };

/** "+25", "25", "-5" or "−5" (the typographic minus people paste) → a whole number, else null. */
export function parseAmount(raw: string): number | null {
  const text = raw.trim().replace(/^−/, "-");
  if (!/^[+-]?\d{1,10}$/.test(text)) return null;
  return Number(text);
}

interface GrantFormProps {
  userId: number;
  username: string;
  /** Tokens the user can lose without going below zero (balance − reserved). */
  available: number;
}

/**
 * Grant (positive) or take away (negative) tokens, always with a reason. A confirmation
 * names the user and the amount before anything is sent; the API's error codes come back
 * in words, and a success refreshes the ledger and the balance.
 */
export function GrantForm({ userId, username, available }: GrantFormProps) {
  const i18n = useI18n();
  const { t, locale } = i18n;
  const mutation = useAdjustTokens(userId);
  const [amount, setAmount] = useState("");
  const [reason, setReason] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [pending, setPending] = useState<Request | null>(null);
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const amountRef = useRef<HTMLInputElement>(null);
  const reasonRef = useRef<HTMLTextAreaElement>(null);
  const reasonId = useId();
  const titleId = useId();

  const validate = (): { request: Request | null; problems: FieldErrors } => {
    const problems: FieldErrors = {};
    const n = parseAmount(amount);
    if (amount.trim() === "") problems.amount = t("admin.grant.amountRequired");
    else if (n === null || n === 0 || Math.abs(n) > MAX_ADJUST_TOKENS) problems.amount = t("admin.grant.amountInvalid");
    const why = reason.trim();
    if (why === "") problems.reason = t("admin.grant.reasonRequired");
    else if (why.length < REASON_MIN || why.length > REASON_MAX) {
      problems.reason = t("admin.grant.reasonLength", { min: REASON_MIN, max: REASON_MAX });
    }
    const ok = !problems.amount && !problems.reason && n !== null;
    return { request: ok ? { amount: n, reason: why, idempotencyKey: newIdempotencyKey() } : null, problems };
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    const { request, problems } = validate();
    setErrors(problems);
    setOutcome(null);
    if (!request) {
      if (problems.amount) amountRef.current?.focus();
      else reasonRef.current?.focus();
      return;
    }
    setPending(request);
  };

  const describeError = (error: unknown): string => {
    if (error instanceof ApiError) {
      if (error.code === "insufficient_tokens") {
        return t("admin.grant.errorInsufficient", { available: formatNumber(error.num("balance") ?? available, locale) });
      }
      if (error.code === "validation_error") {
        const fields = fieldProblems(error).map((p) => p.field);
        if (fields.includes("reason")) return t("admin.grant.reasonLength", { min: REASON_MIN, max: REASON_MAX });
        if (fields.includes("amount")) return t("admin.grant.amountInvalid");
      }
      if (error.code === "invalid_amount") return t("admin.grant.amountInvalid");
    }
    return errorText(i18n, error);
  };

  const confirm = () => {
    if (!pending) return;
    const request = pending;
    mutation.mutate(request, {
      onSuccess: (data) => {
        setPending(null);
        setAmount("");
        setReason("");
        setOutcome({ kind: "success", amount: request.amount, available: data.balance.available });
      },
      onError: (error) => {
        setPending(null);
        setOutcome({ kind: "error", message: describeError(error) });
      },
    });
  };

  const reasonLength = reason.trim().length;
  const reasonErrorId = `${reasonId}-error`;
  const reasonHintId = `${reasonId}-hint`;

  return (
    <Card className="p-4 sm:p-5">
      <h3 id={titleId} className="text-sm font-semibold text-slate-900">{t("admin.grant.title")}</h3>
      <p className="mt-0.5 text-xs text-slate-500">{t("admin.grant.subtitle")}</p>
      <form noValidate onSubmit={onSubmit} aria-labelledby={titleId} className="mt-4 space-y-4">
        <TextField
          ref={amountRef}
          label={t("admin.grant.amount")}
          hint={t("admin.grant.amountHint", { available: formatNumber(available, locale) })}
          error={errors.amount ?? null}
          inputMode="numeric"
          autoComplete="off"
          placeholder="25"
          value={amount}
          onChange={(event) => setAmount(event.target.value)}
          data-testid="admin-grant-amount"
        />
        <div>
          <label htmlFor={reasonId} className="block text-sm font-medium text-slate-700">
            {t("admin.grant.reason")}
          </label>
          <textarea
            ref={reasonRef}
            id={reasonId}
            rows={3}
            required
            maxLength={REASON_MAX}
            value={reason}
            onChange={(event) => setReason(event.target.value)}
            placeholder={t("admin.grant.reasonPlaceholder")}
            aria-invalid={errors.reason ? true : undefined}
            aria-describedby={errors.reason ? reasonErrorId : reasonHintId}
            data-testid="admin-grant-reason"
            className={[
              "mt-1.5 block w-full resize-y rounded-lg border bg-white px-3 py-2 text-sm text-slate-900 shadow-sm",
              "placeholder:text-slate-400 focus:border-brand-500",
              errors.reason ? "border-rose-400" : "border-slate-300",
            ].join(" ")}
          />
          {errors.reason ? (
            <p id={reasonErrorId} className="mt-1.5 text-sm text-rose-700">{errors.reason}</p>
          ) : (
            <p id={reasonHintId} className="mt-1.5 flex justify-between gap-2 text-xs text-slate-500">
              <span>{t("admin.grant.reasonHint")}</span>
              <span className="tabular-nums">{reasonLength}/{REASON_MAX}</span>
            </p>
          )}
        </div>
        <div aria-live="polite">
          {outcome?.kind === "success" ? (
            <Alert tone="success" data-testid="admin-grant-success">
              {t(outcome.amount > 0 ? "admin.grant.granted" : "admin.grant.adjusted", {
                n: formatNumber(Math.abs(outcome.amount), locale),
                available: formatNumber(outcome.available, locale),
              })}
            </Alert>
          ) : outcome?.kind === "error" ? (
            <Alert tone="error" data-testid="admin-grant-error">{outcome.message}</Alert>
          ) : null}
        </div>
        <Button type="submit" className="w-full sm:w-auto" data-testid="admin-grant-submit" disabled={mutation.isPending}>
          {t("admin.grant.submit")}
        </Button>
      </form>
      {pending ? (
        <ConfirmDialog
          title={pending.amount > 0
            ? t("admin.grant.confirmGrant", { n: formatNumber(pending.amount, locale), name: username })
            : t("admin.grant.confirmTake", { n: formatNumber(-pending.amount, locale), name: username })}
          confirmLabel={t("admin.grant.confirm", { amount: formatSigned(pending.amount) })}
          cancelLabel={t("admin.grant.cancel")}
          tone={pending.amount > 0 ? "primary" : "danger"}
          busy={mutation.isPending}
          onConfirm={confirm}
          onCancel={() => setPending(null)}
        >
          <p>{t("admin.grant.confirmReason")}</p>
          <p className="mt-1 whitespace-pre-wrap break-words rounded-lg bg-slate-50 px-3 py-2 text-slate-800 ring-1 ring-inset ring-slate-200">
            {pending.reason}
          </p>
        </ConfirmDialog>
      ) : null}
    </Card>
  );
}
