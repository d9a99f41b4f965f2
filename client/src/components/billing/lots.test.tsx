import { screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { allotmentLeft, expiringLots } from "../../api/billing";
import { translator } from "../../i18n/I18nProvider";
import { inDays, lot } from "../../test/billingFixtures";
import { FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";
import { lotExpiryText } from "./LotTable";

const NOW = Date.parse("2026-01-10T12:00:00Z");

describe("lot expiry in words", () => {
  const en = translator("en");
  const zh = translator("zh");
  const feb1 = "2026-02-01T12:00:00Z";

  it("says how many tokens expire on which day, with English plurals", () => {
    expect(lotExpiryText(en, lot(1, { remaining: 120, expires_at: feb1 }), NOW)).toBe("120 tokens expire on Feb 1");
    expect(lotExpiryText(en, lot(1, { remaining: 1, expires_at: feb1 }), NOW)).toBe("1 token expires on Feb 1");
    expect(lotExpiryText(en, lot(1, { remaining: 1200, expires_at: "2027-03-05T12:00:00Z" }), NOW))
      .toBe("1,200 tokens expire on Mar 5, 2027");
  });

  it("in Chinese, one form for every count and the Chinese date", () => {
    expect(lotExpiryText(zh, lot(1, { remaining: 120, expires_at: feb1 }), NOW)).toBe("120 个代币将于 2月1日 过期");
    expect(lotExpiryText(zh, lot(1, { remaining: 1, expires_at: feb1 }), NOW)).toBe("1 个代币将于 2月1日 过期");
  });

  it("never, used up, expired", () => {
    expect(lotExpiryText(en, lot(1, { expires_at: null }), NOW)).toBe("Never expires");
    expect(lotExpiryText(en, lot(1, { remaining: 0, expires_at: feb1 }), NOW)).toBe("Used up");
    expect(lotExpiryText(en, lot(1, { remaining: 40, expires_at: "2026-01-05T00:00:00Z" }), NOW)).toBe("Expired on Jan 5");
    expect(lotExpiryText(zh, lot(1, { expires_at: null }), NOW)).toBe("永不过期");
  });

  it("expiring soon means active and within 7 days, soonest first; the allotment left sums active allotments", () => {
    const lots = [
      lot(1, { remaining: 10, expires_at: new Date(NOW + 6 * 86_400_000).toISOString() }),
      lot(2, { remaining: 5, expires_at: new Date(NOW + 2 * 86_400_000).toISOString(), source: "allotment" }),
      lot(3, { remaining: 0, expires_at: new Date(NOW + 1 * 86_400_000).toISOString() }),
      lot(4, { remaining: 7, expires_at: new Date(NOW + 8 * 86_400_000).toISOString(), source: "allotment" }),
      lot(5, { remaining: 9, expires_at: new Date(NOW - 1).toISOString(), source: "allotment" }),
      lot(6, { remaining: 50, expires_at: null }),
    ];
    expect(expiringLots(lots, 7, NOW).map((l) => l.id)).toEqual([2, 1]);
    expect(allotmentLeft(lots, NOW)).toEqual({ remaining: 12, expiresAt: lots[1]!.expires_at });
  });
});

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
}, 135);

function dateOf(iso: string): string {
  return new Intl.DateTimeFormat("en-US", {
    month: "short", day: "numeric", ...(new Date(iso).getFullYear() !== new Date().getFullYear() ? { year: "numeric" } : {}),
  }).format(new Date(iso));
}

describe("lots on the history page and in the balance", () => {
  it("lists usable lots with their expiry, the rest on request, and hints at tokens expiring soon", async () => {
    const soon = inDays(3);
    const later = inDays(45);
    api.on("GET", "/api/payment/user/transactions", { json: { items: [], next_before: null } });
    api.on("GET", "/api/payment/user/lots", {
      json: {
        items: [
          lot(4, { source: "allotment", amount: 300, remaining: 120, expires_at: soon }),
          lot(3, { source: "grant", amount: 15, remaining: 15, expires_at: later }),
          lot(2, { source: "allotment", amount: 300, remaining: 0, expires_at: inDays(-20) }),
          lot(1, { source: "purchase", amount: 100, remaining: 0 }),
        ],
      },
    });
    const { user } = renderApp(api, "/history");

    const card = await screen.findByTestId("lots-card");
    let expiries = within(card).getAllByTestId("lot-expiry");
    expect(expiries.map((cell) => cell.textContent)).toEqual([
      `120 tokens expire on ${dateOf(soon)}`,
      `15 tokens expire on ${dateOf(later)}`,
    ]);
    expect(within(card).getAllByTestId("lot-row")[0]).toHaveTextContent("Plan");

    await user.click(within(card).getByRole("button", { name: "Show used and expired lots" }));
    expiries = within(card).getAllByTestId("lot-expiry");
    expect(expiries).toHaveLength(4);
    expect(expiries[2]).toHaveTextContent("Expired on");
    expect(expiries[3]).toHaveTextContent("Used up");

    // Only the lot within 7 days counts as expiring soon.
    const hint = await screen.findByTestId("expiring-soon");
    expect(hint).toHaveTextContent("120 expire soon");
    expect(hint).toHaveAttribute("title", `120 tokens expire on ${dateOf(soon)}`);
  });

  it("no hint when nothing expires within a week", async () => {
    api.on("GET", "/api/payment/user/lots", { json: { items: [lot(1, { remaining: 50, expires_at: inDays(30) })] } });
    renderApp(api, "/chat");
    await waitFor(() => expect(api.requestsTo("GET", "/api/payment/user/lots").length).toBeGreaterThan(0));
    expect(await screen.findByTestId("token-balance")).toHaveTextContent("135");
    expect(screen.queryByTestId("expiring-soon")).not.toBeInTheDocument();
  });
});
