import "@testing-library/jest-dom/vitest";
import { cleanup, configure } from "@testing-library/react";
import { afterEach } from "vitest";
import { setSessionToken } from "../auth/session";

/**
 * jsdom lays nothing out, so Recharts' ResponsiveContainer would measure 0×0 and draw
 * nothing. This observer reports a fixed 640×240 box for whatever it observes.
 */
class FixedSizeResizeObserver implements ResizeObserver {
  constructor(private readonly callback: ResizeObserverCallback) {}

  observe(target: Element): void {
    const contentRect = { x: 0, y: 0, top: 0, left: 0, right: 640, bottom: 240, width: 640, height: 240 };
    const entry = { target, contentRect: { ...contentRect, toJSON: () => contentRect } } as ResizeObserverEntry;
    this.callback([entry], this);
  }

  unobserve(): void {}

  disconnect(): void {}
}
globalThis.ResizeObserver = FixedSizeResizeObserver;

// Two cores shared with other suites: give findBy/waitFor a little more room than 1 s.
configure({ asyncUtilTimeout: 3000 });

afterEach(() => {
  cleanup();
  setSessionToken(null);
  window.localStorage.clear();
  window.sessionStorage.clear();
});
