import type { ReactNode } from "react";
import { useI18n } from "../../i18n/useI18n";
import { errorText } from "../../lib/errorText";
import { Alert } from "./Alert";
import { Button } from "./Button";

interface QueryErrorProps {
  /** What failed to load, e.g. "Couldn't load your history". */
  title?: ReactNode;
  /** The failure, shown in the person's language by its code. */
  error: unknown;
  /** Overrides the text derived from `error` (e.g. for a failure that has no code). */
  message?: ReactNode;
  /** Offers "Try again" when given. */
  onRetry?: () => void;
  /** `alert` for a failure the person just caused; none for a page that failed to load. */
  role?: "alert";
  className?: string;
  "data-testid"?: string;
}

/** The one way a failed request is shown: what failed, why in words, and a way to try again. */
export function QueryError({ title, error, message, onRetry, role, className, ...rest }: QueryErrorProps) {
  const i18n = useI18n();
  return (
    <Alert tone="error" title={title} role={role} className={className} data-testid={rest["data-testid"]}>
      <p>{message ?? errorText(i18n, error)}</p>
      {onRetry ? (
        <Button size="sm" variant="secondary" className="mt-2" onClick={onRetry}>
          {i18n.t("common.retry")}
        </Button>
      ) : null}
    </Alert>
  );
}
