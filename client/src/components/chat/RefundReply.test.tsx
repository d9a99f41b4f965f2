import { screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeApi, now, withDefaults } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
let refunded = false;

function messages() {
  return [
    { id: 1, role: "user", content: "Capital of France?", created_at: now, tokens_charged: 0, refunded: false },
    { id: 2, role: "assistant", content: "Lyon.", created_at: now, tokens_charged: 1, refunded },
  ];
}

beforeEach(async () => {
  refunded = false;
  api = await FakeApi.start();
  withDefaults(api, 3);
  api.on("GET", "/api/chats", { json: [{ id: 7, title: "Trip", created_at: now, updated_at: now, last_message_preview: null }] });
  api.on("GET", "/api/chats/:id/messages", () => ({ json: messages() }));
});
afterEach(async () => {
  await api.close();
});

describe("refund this reply", () => {
  it("asks why, refunds once, and then says so instead of offering it again", async () => {
    api.on("POST", "/api/chats/:chat/messages/:message/refund", () => {
      refunded = true;
      return { json: { refunded: 1, balance: 4, transaction_id: 99 } };
    });
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    const form = screen.getByTestId("refund-form");
    await user.selectOptions(within(form).getByLabelText("What was wrong with it?"), "incomplete");
    await user.type(within(form).getByLabelText("Anything to add? (optional)"), "cut off");
    await user.dblClick(within(form).getByTestId("refund-submit"));

    expect(await screen.findByTestId("reply-refunded")).toHaveTextContent("Refunded");
    expect(screen.queryByTestId("refund-reply")).not.toBeInTheDocument();
    const sent = api.requestsTo("POST", "/api/chats/7/messages/2/refund");
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toEqual({ reason: "incomplete", note: "cut off" });
    // Only the charged AI reply offers it.
    expect(screen.getAllByTestId("ai-message")).toHaveLength(1);
    expect(screen.queryAllByTestId("refund-reply")).toHaveLength(0);
  });

  it("explains a refusal in the person's words", async () => {
    api.on("POST", "/api/chats/:chat/messages/:message/refund", {
      status: 429,
      json: { error: { code: "refund_limit_reached", message: "At most 5", limit: 5 } },
    });
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    await user.click(screen.getByTestId("refund-submit"));

    expect(await screen.findByTestId("refund-error")).toHaveTextContent("You've reached today's limit of refunds");
    expect(screen.queryByTestId("reply-refunded")).not.toBeInTheDocument();
  });
});
