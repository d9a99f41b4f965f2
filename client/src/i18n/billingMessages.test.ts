import { describe, expect, it } from "vitest";
import { translator } from "./I18nProvider";
import { billingEn, billingZh } from "./billingMessages";

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
/** `base.other` for a plural form, the key itself otherwise (Chinese has only `other`). */
const zhKey = (key: string) => key.replace(/\.(zero|one|two|few|many)$/, ".other");

describe("billing text", () => {
  const en: Record<string, string> = billingEn;
  const zh: Record<string, string | undefined> = billingZh;

  it("Chinese uses the same placeholders as English", () => {
    const mismatched = Object.keys(en).filter(
      (key) => JSON.stringify(placeholders(en[key]!)) !== JSON.stringify(placeholders(zh[zhKey(key)] ?? "")),
    );
    expect(mismatched).toEqual([]);
  });

  it("Chinese is Chinese, not the English copied over", () => {
    const copied = Object.keys(zh).filter((key) => zh[key] === en[key] && /[a-z]{3}/i.test(zh[key] ?? ""));
    expect(copied).toEqual([]);
  });

  it("plurals and extra placeholders fill together", () => {
    expect(translator("en").plural("plans.monthlyTokens", 1000)).toBe("1,000 tokens every month");
    expect(translator("en").plural("topup.thisMonth", 1, { amount: "$20.00" })).toBe("This month: 1 top-up, $20.00");
    expect(translator("zh").plural("topup.thisMonth", 2, { amount: "US$40.00" })).toBe("本月：已充值 2 次，共 US$40.00");
  });
});
