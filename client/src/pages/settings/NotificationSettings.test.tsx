import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started.on("GET", "/api/notifications/settings", { json: { low_balance_thresholds: [20], email_alerts: true } });
});

describe("alert settings", () => {
  it("saves up to three low-balance thresholds and the email choice", async () => {
    api.on("PUT", "/api/notifications/settings", (request) => ({ json: request.body }));
    const { user } = renderApp(api, "/settings");

    const first = await screen.findByLabelText("Alert below (tokens) #1");
    expect(first).toHaveValue("20");
    await user.type(screen.getByLabelText("Alert below (tokens) #2"), "100");
    await user.click(screen.getByTestId("email-alerts"));
    await user.click(screen.getByTestId("notification-settings-save"));

    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(api.requestsTo("PUT", "/api/notifications/settings")[0]?.body).toEqual({
      low_balance_thresholds: [100, 20], email_alerts: false,
    });
  });

  it("refuses a threshold that is not a whole number of 1 or more", async () => {
    const { user } = renderApp(api, "/settings");
    await user.type(await screen.findByLabelText("Alert below (tokens) #3"), "0");
    await user.click(screen.getByTestId("notification-settings-save"));
    expect(await screen.findByText("Use whole numbers of 1 or more, or leave the field empty.")).toBeInTheDocument();
    expect(api.requestsTo("PUT", "/api/notifications/settings")).toHaveLength(0);
  });
});
