// Writes src/api/limits.gen.ts: the server's input limits (min/max, lengths, patterns)
// from openapi.json, so forms check what the server checks without restating it.
// Run by `npm run gen:api` (and so by `make client-types`).
import { readFileSync, writeFileSync } from "node:fs";

const KEYS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern"];

const schema = JSON.parse(readFileSync(new URL("../openapi.json", import.meta.url), "utf8"));
const limits = {};
for (const [name, model] of Object.entries(schema.components?.schemas ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
  for (const [field, prop] of Object.entries(model.properties ?? {})) {
    const found = Object.fromEntries(KEYS.filter((key) => key in prop).map((key) => [key, prop[key]]));
    if (Object.keys(found).length) (limits[name] ??= {})[field] = found;
  }
}
const out = `// Generated from openapi.json by scripts/gen-limits.mjs (\`npm run gen:api\`). Do not edit.
/** The server's limits on request fields, by schema and field. */
export const limits = ${JSON.stringify(limits, null, 2)} as const;
`;
writeFileSync(new URL("../src/api/limits.gen.ts", import.meta.url), out);
