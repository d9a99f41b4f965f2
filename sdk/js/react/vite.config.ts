// @tokenbank/react's build: one ES module with the web client components it is made from
// bundled in, and one CSS file; React, Stripe's packages and @tokenbank/client stay
// dependencies of the host app.
import { fileURLToPath } from "node:url";
import tailwindcss from "@tailwindcss/vite";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

export default defineConfig({
  plugins: [react(), tailwindcss()],
  build: {
    outDir: here("./dist"),
    emptyOutDir: false,
    sourcemap: false,
    lib: { entry: here("./src/entry.ts"), formats: ["es"], fileName: () => "index.js", cssFileName: "styles" },
    rollupOptions: {
      external: [/^react($|\/)/, /^react-dom($|\/)/, /^@stripe\//, "@tokenbank/client"],
    },
  },
});
