import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { limits } from "./limits.gen";

const KEYS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern"];

describe("limits.gen.ts", () => {
  it("is current with openapi.json (run `npm run gen:api` after regenerating the schema)", () => {
    const schema = JSON.parse(readFileSync(resolve(import.meta.dirname, "../../openapi.json"), "utf8"));
    const expected: Record<string, Record<string, Record<string, unknown>>> = {};
    for (const [name, model] of Object.entries<{ properties?: Record<string, Record<string, unknown>> }>(
      schema.components.schemas,
    )) {
      for (const [field, prop] of Object.entries(model.properties ?? {})) {
        const found = Object.fromEntries(KEYS.filter((key) => key in prop).map((key) => [key, prop[key]]));
        if (Object.keys(found).length) (expected[name] ??= {})[field] = found;
      }
    }
    expect(limits).toEqual(expected);
  });

  it("carries the limits the forms check", () => {
    expect(limits.AdminTokensRequest.reason.minLength).toBeGreaterThan(0);
    expect(limits.RegisterRequest.password.minLength).toBeGreaterThan(0);
  });
});
