import { useEffect, useId, useState, type KeyboardEvent } from "react";
import { tokensPer1kWords, type ModelInfo, type Quote } from "../../api/pricing";
import { useI18n } from "../../i18n/useI18n";
import type { I18n } from "../../i18n/I18nProvider";

/** "1 token / reply" or "≈ 1,334 tokens / 1k words" (words of reply, at the output price). */
export function priceLabel(i18n: Pick<I18n, "t" | "plural">, model: ModelInfo): string {
  if (model.price.kind === "per_reply") return i18n.plural("pricing.perReply", model.price.per_reply);
  return i18n.t("pricing.per1kWords", { tokens: i18n.plural("common.tokens", tokensPer1kWords(model.price)) });
}

interface ModelPickerProps {
  models: ModelInfo[];
  value: string;
  onChange: (model: string) => void;
  disabled?: boolean;
}

/** Which model answers, each with its price. */
export function ModelPicker({ models, value, onChange, disabled = false }: ModelPickerProps) {
  const i18n = useI18n();
  const id = useId();
  return (
    <span className="inline-flex min-w-0 items-center gap-1.5">
      <label htmlFor={id} className="sr-only">{i18n.t("pricing.model")}</label>
      <select
        id={id}
        data-testid="model-picker"
        value={value}
        disabled={disabled}
        onChange={(event) => onChange(event.target.value)}
        className="h-8 min-w-0 max-w-56 truncate rounded-lg border border-slate-200 bg-slate-50 px-2 text-xs font-medium text-slate-700 hover:bg-slate-100"
      >
        {models.map((model) => (
          <option key={model.id} value={model.id}>
            {`${model.name} · ${priceLabel(i18n, model)}`}
          </option>
        ))}
      </select>
    </span>
  );
}

interface CostCapProps {
  /** The chat's cap on one reply, in tokens; null for none. */
  value: number | null;
  onSave: (cap: number | null) => void;
  disabled?: boolean;
}

/** The most one reply in this chat may cost; saved when the field is left or Enter is pressed. */
export function CostCap({ value, onSave, disabled = false }: CostCapProps) {
  const { t } = useI18n();
  const id = useId();
  const [text, setText] = useState(value === null ? "" : String(value));
  useEffect(() => setText(value === null ? "" : String(value)), [value]);
  const save = () => {
    const trimmed = text.trim();
    const next = trimmed === "" ? null : Number(trimmed);
    if (next !== null && (!Number.isInteger(next) || next < 1)) {
      setText(value === null ? "" : String(value)); // not a whole positive number: keep the saved cap
      return;
    }
    if (next !== value) onSave(next);
  };
  const onKeyDown = (event: KeyboardEvent<HTMLInputElement>) => {
    if (event.key === "Enter") {
      event.preventDefault();
      save();
    }
  };
  return (
    <span className="inline-flex items-center gap-1.5 text-xs text-slate-500">
      <label htmlFor={id}>{t("pricing.cap")}</label>
      <input
        id={id}
        data-testid="cost-cap"
        type="number"
        inputMode="numeric"
        min={1}
        step={1}
        placeholder={t("pricing.capNone")}
        value={text}
        disabled={disabled}
        onChange={(event) => setText(event.target.value)}
        onBlur={save}
        onKeyDown={onKeyDown}
        className="h-8 w-20 rounded-lg border border-slate-200 bg-slate-50 px-2 text-xs tabular-nums text-slate-700"
      />
    </span>
  );
}

/** "≈ 3–12 tokens" for the message being typed (the cap already applied by the server). */
export function QuoteText({ quote }: { quote: Quote }) {
  const { t, plural } = useI18n();
  const range =
    quote.min === quote.max
      ? plural("common.tokens", quote.max)
      : t("pricing.range", { min: quote.min, max: plural("common.tokens", quote.max) });
  return (
    <span data-testid="quote" title={t("pricing.quoteHint")} className="tabular-nums">
      {t("pricing.quote", { range })}
      {quote.cap !== null ? <span className="text-slate-400"> {t("pricing.capped", { cap: quote.cap })}</span> : null}
    </span>
  );
}
