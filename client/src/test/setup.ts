import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";
import { setSessionToken } from "../auth/session";

afterEach(() => {
  cleanup();
  setSessionToken(null);
  window.localStorage.clear();
  window.sessionStorage.clear();
});
