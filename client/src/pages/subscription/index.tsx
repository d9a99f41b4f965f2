import { useSearch } from "wouter";
import { usePaymentConfig } from "../../api/queries";
import { PageContainer } from "../../components/layout/AppShell";
import { PageHeader } from "../../components/ui/PageHeader";
import { useI18n } from "../../i18n/useI18n";
import { useStripeJs } from "../payment/usePaymentFlow";
import { AutoTopupCard } from "./AutoTopupCard";
import { RedirectNotice } from "./RedirectNotice";
import { SavedCardsCard } from "./SavedCardsCard";
import { SubscriptionCard } from "./SubscriptionCard";

/** /subscription — the plan, saved cards and automatic top-up. */
export default function SubscriptionPage() {
  const { t } = useI18n();
  const config = usePaymentConfig();
  const stripe = useStripeJs(config.data);
  // Stripe's redirect back after a payment method that left the page.
  const redirectStatus = new URLSearchParams(useSearch()).get("redirect_status");
  return (
    <PageContainer className="max-w-4xl space-y-5">
      <PageHeader title={t("subscription.title")} subtitle={t("subscription.subtitle")} />
      {redirectStatus ? <RedirectNotice status={redirectStatus} /> : null}
      <SubscriptionCard stripe={stripe.promise} />
      <SavedCardsCard />
      <AutoTopupCard />
    </PageContainer>
  );
}
