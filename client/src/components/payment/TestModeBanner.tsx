import type { PaymentConfig } from "../../api/types";
import { useI18n } from "../../i18n/useI18n";
import { Alert } from "../ui/Alert";

/** Shown outside live mode so nobody types a real card into a test form. */
export function TestModeBanner({ config }: { config: PaymentConfig }) {
  const { t } = useI18n();
  if (config.mode === "live") return null;
  const cards = config.test_cards ?? [];
  return (
    <Alert tone="warning" title={t("payment.testModeTitle")} data-testid="test-mode-banner" className="mb-6">
      {config.mode === "simulated" ? <p>{t("payment.simulatedNote")}</p> : null}
      {cards.length ? (
        <>
          <p>{t("payment.testModeBody")}</p>
          <ul className="mt-2 grid gap-x-6 gap-y-1 sm:grid-cols-2">
            {cards.map((card) => (
              <li key={card.number} className="flex flex-wrap items-baseline gap-x-2">
                <code className="select-all font-mono text-[13px] font-semibold tracking-wide">{card.number}</code>
                <span className="text-amber-800">{card.description}</span>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </Alert>
  );
}
