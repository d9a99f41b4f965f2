import type { FormEvent, ReactNode } from "react";
import { Link } from "wouter";
import { Alert } from "../../components/ui/Alert";
import { Button } from "../../components/ui/Button";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";

/** The password reset pages' footer: back to the sign-in page. */
export function BackToSignIn() {
  const { t } = useI18n();
  return (
    <Link href="/login" className="font-medium text-brand-700 hover:underline">
      {t("auth.forgot.back")}
    </Link>
  );
}

/**
 * A password reset page's form: its one field (`children`), the request's failure above
 * it, and a full-width submit button that is busy while the request runs.
 */
export function OneFieldForm({ request, onSubmit, submitLabel, children }: {
  request: { isError: boolean; error: unknown; isPending: boolean };
  onSubmit: (event: FormEvent) => void;
  submitLabel: string;
  children: ReactNode;
}) {
  const i18n = useI18n();
  return (
    <form onSubmit={onSubmit} noValidate className="space-y-5">
      {request.isError ? <Alert tone="error" role="alert">{errorText(i18n, request.error)}</Alert> : null}
      {children}
      <Button type="submit" size="lg" className="w-full" busy={request.isPending} disabled={request.isPending}>
        {submitLabel}
      </Button>
    </form>
  );
}
