// Builds the example page's widget bundle (static/widgets/) from @tokenbank/react's source.
import { fileURLToPath } from "node:url";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
const sdk = here("../../../sdk/js");

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: [
      { find: "@tokenbank/react/styles.css", replacement: `${sdk}/react/src/styles.css` },
      { find: "@tokenbank/react", replacement: `${sdk}/react/src/index.ts` },
      { find: "@tokenbank/client", replacement: `${sdk}/client/src/index.ts` },
    ],
  },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: here("../static/widgets"),
    emptyOutDir: true,
    lib: { entry: here("./widgets.tsx"), formats: ["es"], fileName: () => "widgets.js", cssFileName: "widgets" },
  },
});
