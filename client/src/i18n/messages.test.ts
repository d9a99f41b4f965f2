import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { ApiError } from "../api/errors";
import { errorText } from "../lib/errorText";
import { translator } from "./I18nProvider";
import { en, zh } from "./messages";

/** The codes the server's OpenAPI schema lists on every error body (`make client-types`). */
function schemaErrorCodes(): string[] {
  const schema = JSON.parse(readFileSync(resolve(import.meta.dirname, "../../openapi.json"), "utf8"));
  const codes: unknown = schema.components?.schemas?.ErrorDetail?.properties?.code?.enum;
  if (!Array.isArray(codes)) throw new Error("openapi.json lists no error codes on ErrorDetail.code");
  return codes.map(String);
}

describe("server error codes", () => {
  const codes = schemaErrorCodes();

  it("the schema lists the codes the client relies on", () => {
    expect(codes).toEqual(expect.arrayContaining(["insufficient_tokens", "retry_later", "invalid_input"]));
  });

  it.each(["en", "zh"] as const)("every code in the schema has a %s translation", (lang) => {
    const dict: Record<string, string | undefined> = lang === "en" ? en : zh;
    const missing = codes.filter((code) => !dict[`errors.${code}`]);
    expect(missing).toEqual([]);
  });

  it("Chinese text is Chinese, not the English copied over", () => {
    const dict: Record<string, string | undefined> = zh;
    const english: Record<string, string | undefined> = en;
    const copied = codes.filter((code) => dict[`errors.${code}`] === english[`errors.${code}`]);
    expect(copied).toEqual([]);
  });

  it("no translation for a code the server does not have, but the client's own", () => {
    const clientCodes = ["network_error", "unknown"];
    const translated = Object.keys(en)
      .filter((key) => key.startsWith("errors."))
      .map((key) => key.slice("errors.".length));
    expect(translated.filter((code) => !codes.includes(code) && !clientCodes.includes(code))).toEqual([]);
  });

  it("error texts need no placeholders (errorText fills none)", () => {
    for (const dict of [en, zh] as Record<string, string | undefined>[]) {
      const withPlaceholders = Object.entries(dict).filter(([key, text]) => key.startsWith("errors.") && /\{\w+\}/.test(text ?? ""));
      expect(withPlaceholders).toEqual([]);
    }
  });

  it("errorText shows the translation, not the server's English", () => {
    const error = new ApiError(503, "retry_later", "A concurrent request got in the way");
    expect(errorText(translator("zh"), error)).toBe(zh["errors.retry_later"]);
    expect(errorText(translator("en"), new ApiError(422, "invalid_input", "x"))).toBe(en["errors.invalid_input"]);
  });
});

describe("plural forms (Intl.PluralRules)", () => {
  it("English has one and other", () => {
    const { plural } = translator("en");
    expect(plural("common.tokens", 1)).toBe("1 token");
    expect(plural("common.tokens", 0)).toBe("0 tokens");
    expect(plural("common.tokens", 2)).toBe("2 tokens");
    expect(plural("admin.webhooks.attempts", 1)).toBe("1 attempt");
    expect(plural("pricing.perReply", 1)).toBe("1 token / reply");
    expect(plural("balance.repliesLeft", 1)).toBe("≈ 1 reply left");
    expect(plural("balance.repliesLeft", 4)).toBe("≈ 4 replies left");
  });

  it("counts are formatted for the locale", () => {
    expect(translator("en").plural("common.tokens", 12500)).toBe("12,500 tokens");
  });

  it("Chinese has a single form, used for every count", () => {
    const { plural } = translator("zh");
    expect(plural("common.tokens", 1)).toBe("1 个代币");
    expect(plural("common.tokens", 3)).toBe("3 个代币");
    expect(plural("chat.cost", 1)).toBe("每次回复 1 个代币");
    expect(plural("pricing.perReply", 2)).toBe("每次回复 2 个代币");
    expect(plural("balance.repliesLeft", 1)).toBe("约可回复 1 次");
  });
});
