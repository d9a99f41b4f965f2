import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { useApi } from "../../api/ApiProvider";
import { refreshBilling } from "../../api/billing";
import { awaitSubscription } from "../../components/billing/plans";
import { Alert } from "../../components/ui/Alert";
import { Spinner } from "../../components/ui/Spinner";
import { useI18n } from "../../i18n/useI18n";

/**
 * Back from a redirect-based payment for a subscription (Stripe appends
 * redirect_status): a failure says nothing was charged; otherwise wait for the plan.
 */
export function RedirectNotice({ status }: { status: string }) {
  const { t } = useI18n();
  const api = useApi();
  const queryClient = useQueryClient();
  const [waiting, setWaiting] = useState(status !== "failed");

  useEffect(() => {
    if (status === "failed") return;
    let live = true;
    void awaitSubscription(api)
      .catch(() => null)
      .then(() => refreshBilling(queryClient))
      .finally(() => {
        if (live) setWaiting(false);
      });
    return () => {
      live = false;
    };
  }, [api, queryClient, status]);

  if (status === "failed") {
    return (
      <Alert tone="error" role="alert" title={t("payment.failedTitle")} data-testid="subscription-redirect-failed">
        <p>{t("payment.failedBody")}</p>
      </Alert>
    );
  }
  return waiting ? (
    <Alert tone="info" role="status">
      <p className="flex items-center gap-2"><Spinner className="size-4" /> {t("plans.activating")}</p>
    </Alert>
  ) : null;
}
