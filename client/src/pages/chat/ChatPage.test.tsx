import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { draftKey } from "../../components/chat/drafts";
import { apiError, balance, chatMessage, FakeApi, now, withDefaults } from "../../test/fakeApi";
import type { GenerateResult } from "../../api/types";
import { renderApp } from "../../test/render";

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
  withDefaults(api, 3);
  api.on("GET", "/api/chats", {
    json: [
      { id: 7, title: "Trip ideas", created_at: now, updated_at: now, last_message_preview: null },
      { id: 3, title: "Older chat", created_at: now, updated_at: "2025-05-01T09:00:00Z", last_message_preview: "Hi" },
    ],
  });
  api.on("GET", "/api/chats/:id/messages", { json: [] });
});
afterEach(async () => {
  await api.close();
});

const outOfTokens = apiError(402, "insufficient_tokens", "Not enough tokens", { balance: 0, required: 1 });

function reply(content: string, userText: string, remaining: number): GenerateResult {
  return {
    user_message: chatMessage({ id: 1, role: "user", content: userText }),
    ai_message: chatMessage({ id: 2, role: "assistant", content, tokens_charged: 1, cost: 1, model: "gpt-test" }),
    tokens_charged: 1,
    balance: remaining,
    replayed: false,
    price_version: 3,
  };
}

describe("running out of tokens", () => {
  it("shows balance and cost, offers the packs with a way back, and keeps the draft", async () => {
    api.on("POST", "/api/chats/:id/generate/stream", outOfTokens);
    api.on("POST", "/api/chats/:id/generate", outOfTokens);
    const first = renderApp(api, "/chat/7");

    const input = await screen.findByTestId("chat-input");
    await first.user.type(input, "Plan a weekend in Lisbon");
    await first.user.click(screen.getByTestId("send-button"));

    const prompt = await screen.findByTestId("insufficient-tokens");
    expect(prompt).toHaveTextContent("This reply needs 1 token and you have 0 tokens");
    expect(within(prompt).getByRole("link", { name: /See all packs/ })).toHaveAttribute("href", "/payment?return=/chat/7");
    const starter = await within(prompt).findByRole("link", { name: /100 tokens · \$5\.00/ });
    expect(starter).toHaveAttribute("href", "/payment?tier=starter&return=/chat/7");
    expect(input).toHaveValue("Plan a weekend in Lisbon");
    expect(screen.queryByTestId("ai-message")).not.toBeInTheDocument();
    expect(window.sessionStorage.getItem(draftKey("7"))).toBe("Plan a weekend in Lisbon");

    // Off to the payment page and back: the draft is still there.
    await first.user.click(within(prompt).getByRole("link", { name: /See all packs/ }));
    expect(await screen.findByTestId("tier-starter")).toBeInTheDocument();
    first.unmount();
    renderApp(api, "/chat/7");
    expect(await screen.findByTestId("chat-input")).toHaveValue("Plan a weekend in Lisbon");
  });
});

describe("sending", () => {
  it("streams the reply, shows it as an AI message and refreshes the balance", async () => {
    let replied = false;
    api.on("GET", "/api/payment/user/tokens", () => ({ json: balance(replied ? 2 : 3) }));
    api.on("POST", "/api/chats/:id/generate/stream", (request) => {
      replied = true;
      const text = (request.body as { content: string }).content;
      return {
        sse: [
          { event: "delta", data: { text: "Hello" } },
          { event: "delta", data: { text: ", Ada!" } },
          { event: "done", data: reply("Hello, Ada!", text, 2) },
        ],
      };
    });
    const { user } = renderApp(api, "/chat/7");

    expect(await screen.findByText("1 token per reply")).toBeInTheDocument();
    expect(await screen.findByTestId("token-balance")).toHaveTextContent("3");
    await user.type(screen.getByTestId("chat-input"), "Hi there{Enter}");

    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Hello, Ada!");
    await waitFor(() => expect(screen.getByTestId("token-balance")).toHaveTextContent("2"));
    expect(screen.getByTestId("chat-input")).toHaveValue("");
    const sent = api.requestsTo("POST", "/api/chats/7/generate/stream");
    expect(sent).toHaveLength(1);
    expect(sent[0]?.body).toEqual({ content: "Hi there" });
    expect(sent[0]?.headers["idempotency-key"]).toBeTruthy();
    expect(sent[0]?.headers.authorization).toBe("Bearer test-session-token");
  });

  it("falls back to the plain endpoint with the same idempotency key when streaming is missing", async () => {
    api.on("POST", "/api/chats/:id/generate", (request) => ({
      json: reply("Plain reply", (request.body as { content: string }).content, 2),
    }));
    const { user } = renderApp(api, "/chat/7");

    await user.type(await screen.findByTestId("chat-input"), "Hello");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Plain reply");
    const streamed = api.requestsTo("POST", "/api/chats/7/generate/stream");
    const plain = api.requestsTo("POST", "/api/chats/7/generate");
    expect(plain).toHaveLength(1);
    expect(plain[0]?.headers["idempotency-key"]).toBe(streamed[0]?.headers["idempotency-key"]);
  });

  it("reports an unavailable AI without losing the draft", async () => {
    const unavailable = apiError(502, "ai_unavailable", "upstream down");
    api.on("POST", "/api/chats/:id/generate/stream", unavailable);
    const { user } = renderApp(api, "/chat/7");

    await user.type(await screen.findByTestId("chat-input"), "Still there?");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("chat-error")).toHaveTextContent("You were not charged");
    expect(screen.getByTestId("chat-input")).toHaveValue("Still there?");
    expect(screen.queryByTestId("insufficient-tokens")).not.toBeInTheDocument();
  });

  it("reads an error event on the stream by its code: out of tokens mid-stream", async () => {
    api.on("POST", "/api/chats/:id/generate/stream", {
      sse: [{ event: "error", data: { code: "insufficient_tokens", message: "Not enough", balance: 0, required: 2 } }],
    });
    const { user } = renderApp(api, "/chat/7");

    await user.type(await screen.findByTestId("chat-input"), "One more?");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("insufficient-tokens")).toHaveTextContent("needs 2 tokens and you have 0 tokens");
    expect(screen.queryByTestId("chat-error")).not.toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/chats/7/generate")).toHaveLength(0);
  });

  it("reads an error event on the stream by its code: any other code in words", async () => {
    api.on("POST", "/api/chats/:id/generate/stream", {
      sse: [{ event: "error", data: { code: "retry_later", message: "A concurrent request got in the way" } }],
    });
    const { user } = renderApp(api, "/chat/7");

    await user.type(await screen.findByTestId("chat-input"), "Again?");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("chat-error")).toHaveTextContent("Another request got in the way and nothing was changed");
    expect(screen.getByTestId("chat-input")).toHaveValue("Again?");
  });

  it("creates the chat on the first message from /chat", async () => {
    api.on("POST", "/api/chats", { status: 201, json: { id: 12, title: "Hi", created_at: now, updated_at: now } });
    api.on("POST", "/api/chats/:id/generate/stream", {
      sse: [{ event: "done", data: reply("Welcome!", "Hi", 2) }],
    });
    const { user, location } = renderApp(api, "/chat");

    await user.type(await screen.findByTestId("chat-input"), "Hi");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Welcome!");
    expect(location.history.at(-1)).toBe("/chat/12");
    expect(api.requestsTo("POST", "/api/chats")[0]?.body).toEqual({ title: "Hi" });
    expect(api.requestsTo("POST", "/api/chats/12/generate/stream")).toHaveLength(1);
  });
});

describe("what a reply costs", () => {
  it("is the server's figure", async () => {
    api.on("GET", "/api/chats/config", {
      json: { reply_cost_tokens: 3, model: "gpt-test", provider: "offline", offline: true, max_message_chars: 4000 },
    });
    renderApp(api, "/chat");
    expect(await screen.findByText("Each reply costs 3 tokens. Your balance is always in the top bar.")).toBeInTheDocument();
    expect(screen.getByText("3 tokens per reply")).toBeInTheDocument();
  });

  it("is not guessed when the server could not say", async () => {
    api.on("GET", "/api/chats/config", apiError(503, "database_unavailable", "down"));
    renderApp(api, "/chat");
    expect(await screen.findByText("Your balance is always in the top bar.")).toBeInTheDocument();
    await waitFor(() => expect(document.getElementById("chat-cost")).toHaveTextContent(""));
    expect(screen.queryByText(/per reply/)).not.toBeInTheDocument();
    expect(screen.queryByText(/Each reply costs/)).not.toBeInTheDocument();
  });
});

describe("history", () => {
  it("marks a reply that was cut short as interrupted, with the text it got to", async () => {
    api.on("GET", "/api/chats/:id/messages", {
      json: [
        chatMessage({ id: 1, role: "user", content: "Tell me a story" }),
        chatMessage({ id: 2, role: "assistant", content: "Once upon a", tokens_charged: 1, cost: 1, model: "gpt-test", interrupted: true, finish_reason: "cut" }),
        chatMessage({ id: 3, role: "user", content: "Again" }),
        chatMessage({ id: 4, role: "assistant", content: "The end.", tokens_charged: 1, cost: 1, model: "gpt-test" }),
      ],
    });
    renderApp(api, "/chat/7");

    const replies = await screen.findAllByTestId("ai-message");
    expect(replies.map((r) => r.textContent)).toEqual(["Once upon a", "The end."]);
    const marks = screen.getAllByTestId("message-interrupted");
    expect(marks).toHaveLength(1);
    expect(marks[0]).toHaveTextContent("Interrupted");
    expect(replies[0]?.parentElement).toContainElement(marks[0] ?? null);
  });
});
