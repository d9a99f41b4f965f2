// The service API's part of tokenbank's OpenAPI schema: the /api/v1 paths and every
// component they reference (transitively), so @tokenbank/client's types name nothing else.
// Usage: node extract-v1.mjs <full openapi.json> <out.json>
import { readFileSync, writeFileSync } from "node:fs";

const [source, target] = process.argv.slice(2);
const full = JSON.parse(readFileSync(source, "utf8"));
const paths = Object.fromEntries(Object.entries(full.paths).filter(([p]) => p.startsWith("/api/v1/")));

const wanted = new Set();
const visit = (node) => {
  if (Array.isArray(node)) return node.forEach(visit);
  if (node === null || typeof node !== "object") return;
  for (const [key, value] of Object.entries(node)) {
    if (key === "$ref" && typeof value === "string") {
      const [, kind, name] = value.match(/^#\/components\/(\w+)\/(.+)$/) ?? [];
      if (kind && !wanted.has(`${kind}/${name}`)) {
        wanted.add(`${kind}/${name}`);
        visit(full.components[kind][name]);
      }
    } else visit(value);
  }
};
visit(paths);

const components = {};
for (const item of [...wanted].sort()) {
  const [kind, name] = item.split("/");
  (components[kind] ??= {})[name] = full.components[kind][name];
}
const schemes = full.components.securitySchemes ?? {};
const used = new Set(Object.values(paths).flatMap((ops) =>
  Object.values(ops).flatMap((op) => (op.security ?? []).flatMap((s) => Object.keys(s)))));
components.securitySchemes = Object.fromEntries(Object.entries(schemes).filter(([k]) => used.has(k)));

const out = { openapi: full.openapi, info: { ...full.info, title: `${full.info.title} service API (v1)` }, paths, components };
writeFileSync(target, JSON.stringify(out, null, 2) + "\n");
console.log(`${Object.keys(paths).length} paths, ${wanted.size} components -> ${target}`);
