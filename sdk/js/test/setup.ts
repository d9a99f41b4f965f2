import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";

// Two cores shared with other suites: give findBy/waitFor a little more room than 1 s.
configure({ asyncUtilTimeout: 3000 });

afterEach(() => {
  cleanup();
});
