/// <reference types="vitest/config" />
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { "@tokenbank/client": fileURLToPath(new URL("./client/src/index.ts", import.meta.url)) },
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./test/setup.ts"],
    include: ["client/src/**/*.test.ts", "react/src/**/*.test.tsx"],
    restoreMocks: true,
    testTimeout: 15000,
  },
});
