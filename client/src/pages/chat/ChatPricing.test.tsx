import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { apiError, balance, chatMessage, FakeApi, now, withDefaults } from "../../test/fakeApi";
import { renderApp } from "../../test/render";
import type { ModelList } from "../../api/pricing";
import type { Chat, GenerateResult, Message } from "../../api/types";

const models: ModelList = {
  default: "mini",
  price_version: 3,
  items: [
    { id: "mini", name: "Mini", price: { kind: "per_reply", per_reply: 1 }, recent_average: null },
    {
      id: "big",
      name: "Big",
      price: { kind: "usage", per_1k_input: 500, per_1k_output: 1000, per_1k_cached: 100, minimum: 1 },
      recent_average: 6.5,
    },
  ],
};

function chat(id: number, extra: Partial<Chat> = {}): Chat {
  return { id, title: `Chat ${id}`, created_at: now, updated_at: now, last_message_preview: null, model: null, cost_cap: null, ...extra };
}

function reply(content: string, userText: string, remaining: number, cost = 1): GenerateResult {
  return {
    user_message: chatMessage({ id: 11, role: "user", content: userText }),
    ai_message: chatMessage({ id: 12, role: "assistant", content, cost, tokens_charged: cost, model: "big" }),
    tokens_charged: cost,
    balance: remaining,
    replayed: false,
    price_version: 3,
  };
}

let api: FakeApi;
beforeEach(async () => {
  api = await FakeApi.start();
  withDefaults(api, 20);
  api.on("GET", "/api/models", { json: models });
  api.on("GET", "/api/chats", { json: [chat(7, { model: "mini" })] });
  api.on("GET", "/api/chats/:id/messages", { json: [] });
  api.on("PATCH", "/api/chats/:id", (request, params) => ({
    json: { ...chat(Number(params.id), { model: "mini" }), ...(request.body as object) },
  }));
  api.on("POST", "/api/chats/:id/quote", (request) => {
    const body = request.body as { content: string; model?: string };
    return { json: { min: 3, max: 12, cap: null, model: body.model ?? "mini", price_version: 3 } };
  });
});
afterEach(async () => {
  await api.close();
});

describe("the model picker", () => {
  it("lists the models with their prices, starts on the chat's model and saves a change on the chat", async () => {
    api.on("POST", "/api/chats/:id/generate/stream", (request) => ({
      sse: [{ event: "done", data: reply("Sure.", (request.body as { content: string }).content, 14, 6) }],
    }));
    const { user } = renderApp(api, "/chat/7");

    const picker = await screen.findByTestId("model-picker");
    expect(within(picker).getAllByRole("option").map((o) => o.textContent)).toEqual([
      "Mini · 1 token / reply",
      "Big · ≈ 1,334 tokens / 1k words",
    ]);
    expect(picker).toHaveValue("mini");
    expect(await screen.findByTestId("replies-left")).toHaveTextContent("≈ 20 replies left");

    await user.selectOptions(picker, "big");
    await waitFor(() => expect(api.requestsTo("PATCH", "/api/chats/7").map((r) => r.body)).toEqual([{ model: "big" }]));
    expect(picker).toHaveValue("big");
    // 20 tokens at this person's recent average of 6.5 on Big.
    expect(screen.getByTestId("replies-left")).toHaveTextContent("≈ 3 replies left");

    // After the reply the average on Big is 10 (and the balance still 20): replies left follows.
    api.on("GET", "/api/models", {
      json: { ...models, items: [models.items[0], { ...models.items[1], recent_average: 10 }] },
    });
    await user.type(screen.getByTestId("chat-input"), "Explain CSP{Enter}");
    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Sure.");
    expect(api.requestsTo("POST", "/api/chats/7/generate/stream")[0]?.body).toEqual({ content: "Explain CSP", model: "big" });
    await waitFor(() => expect(screen.getByTestId("replies-left")).toHaveTextContent("≈ 2 replies left"));
  });

  it("is absent when the server has no model list, and nothing else changes", async () => {
    api.on("GET", "/api/models", { status: 404, json: { detail: "Not Found" } });
    renderApp(api, "/chat/7");
    expect(await screen.findByText("1 token per reply")).toBeInTheDocument();
    expect(screen.queryByTestId("model-picker")).not.toBeInTheDocument();
    expect(screen.queryByTestId("cost-cap")).not.toBeInTheDocument();
  });

  it("on a new chat, gives the created chat the chosen model and cap before the first reply", async () => {
    api.on("POST", "/api/chats", { status: 201, json: chat(12) });
    api.on("POST", "/api/chats/:id/generate/stream", (request) => ({
      sse: [{ event: "done", data: reply("Hi!", (request.body as { content: string }).content, 14, 6) }],
    }));
    const { user } = renderApp(api, "/chat");

    await user.selectOptions(await screen.findByTestId("model-picker"), "big");
    await user.type(screen.getByTestId("cost-cap"), "8{Enter}");
    expect(api.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
    await user.type(screen.getByTestId("chat-input"), "Hello{Enter}");

    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Hi!");
    const paths = api.requests.map((r) => `${r.method} ${r.path}`);
    const created = paths.indexOf("POST /api/chats");
    const patched = paths.indexOf("PATCH /api/chats/12");
    const generated = paths.indexOf("POST /api/chats/12/generate/stream");
    expect(created).toBeGreaterThan(-1);
    expect(created).toBeLessThan(patched);
    expect(patched).toBeLessThan(generated);
    expect(api.requestsTo("PATCH", "/api/chats/12")[0]?.body).toEqual({ model: "big", cost_cap: 8 });
    expect(api.requestsTo("POST", "/api/chats/12/generate/stream")[0]?.body).toEqual({ content: "Hello", model: "big" });
  });

  it("on a new chat with the default model and no cap, saves nothing extra on the chat", async () => {
    api.on("POST", "/api/chats", { status: 201, json: chat(12) });
    api.on("POST", "/api/chats/:id/generate/stream", (request) => ({
      sse: [{ event: "done", data: reply("Hi!", (request.body as { content: string }).content, 19, 1) }],
    }));
    const { user } = renderApp(api, "/chat");

    expect(await screen.findByTestId("model-picker")).toHaveValue("mini");
    await user.type(screen.getByTestId("chat-input"), "Hello{Enter}");

    expect(await screen.findByTestId("ai-message")).toHaveTextContent("Hi!");
    expect(api.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
    expect(api.requestsTo("POST", "/api/chats/12/generate/stream")[0]?.body).toEqual({ content: "Hello", model: "mini" });
  });
});

describe("the quote", () => {
  it("shows the range for the message as the person types, asking once typing pauses", async () => {
    const { user } = renderApp(api, "/chat/7");
    const input = await screen.findByTestId("chat-input");
    expect(await screen.findByText("1 token / reply")).toBeInTheDocument();

    await user.type(input, "Hello there, how are you");
    expect(await screen.findByTestId("quote")).toHaveTextContent("≈ 3–12 tokens");
    const asked = api.requestsTo("POST", "/api/chats/7/quote");
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.length).toBeLessThan("Hello there, how are you".length / 2);
    expect(asked.at(-1)?.body).toEqual({ content: "Hello there, how are you", model: "mini" });
  });

  it("shows a single figure when the range is one number", async () => {
    api.on("POST", "/api/chats/:id/quote", { json: { min: 1, max: 1, cap: null, model: "mini", price_version: 3 } });
    const { user } = renderApp(api, "/chat/7");
    await user.type(await screen.findByTestId("chat-input"), "Hi");
    expect(await screen.findByTestId("quote")).toHaveTextContent(/^≈ 1 token$/);
  });

  it("shows the out-of-tokens prompt before sending when the balance is below the quote's minimum", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(2) });
    api.on("POST", "/api/chats/:id/quote", { json: { min: 5, max: 9, cap: null, model: "mini", price_version: 3 } });
    const { user } = renderApp(api, "/chat/7");

    const input = await screen.findByTestId("chat-input");
    await user.type(input, "Write me a long poem");
    expect(await screen.findByTestId("quote")).toHaveTextContent("≈ 5–9 tokens");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("insufficient-tokens")).toHaveTextContent("This reply needs at least 5 tokens and you have 2 tokens");
    expect(api.requestsTo("POST", "/api/chats/7/generate/stream")).toHaveLength(0);
    expect(api.requestsTo("POST", "/api/chats/7/generate")).toHaveLength(0);
    expect(input).toHaveValue("Write me a long poem");
  });
});

describe("the quote on a new chat", () => {
  beforeEach(() => {
    api.on("POST", "/api/chats/quote", (request) => {
      const body = request.body as { content: string; model?: string; cost_cap?: number };
      const cap = body.cost_cap ?? null;
      return { json: { min: 2, max: cap ?? 9, cap, model: body.model ?? "mini", price_version: 3 } };
    });
  });

  it("shows the range before the first send, for the model and cap chosen, and creates nothing", async () => {
    const { user } = renderApp(api, "/chat");
    const input = await screen.findByTestId("chat-input");
    expect(await screen.findByTestId("model-picker")).toHaveValue("mini");

    await user.type(input, "Hello there");
    expect(await screen.findByTestId("quote")).toHaveTextContent(/^≈ 2–9 tokens$/);
    expect(api.requestsTo("POST", "/api/chats/quote").at(-1)?.body).toEqual({ content: "Hello there", model: "mini" });

    await user.selectOptions(screen.getByTestId("model-picker"), "big");
    await user.type(screen.getByTestId("cost-cap"), "8{Enter}");
    await waitFor(() => expect(screen.getByTestId("quote")).toHaveTextContent("≈ 2–8 tokens (capped at 8)"));
    expect(api.requestsTo("POST", "/api/chats/quote").at(-1)?.body).toEqual({ content: "Hello there", model: "big", cost_cap: 8 });

    expect(api.requestsTo("POST", "/api/chats")).toHaveLength(0);
    expect(api.requests.filter((r) => r.method === "PATCH")).toHaveLength(0);
  });

  it("shows the out-of-tokens prompt before the chat is created when the balance is below the minimum", async () => {
    api.on("GET", "/api/payment/user/tokens", { json: balance(1) });
    const { user } = renderApp(api, "/chat");

    const input = await screen.findByTestId("chat-input");
    await user.type(input, "Write me a long poem");
    expect(await screen.findByTestId("quote")).toHaveTextContent("≈ 2–9 tokens");
    await user.click(screen.getByTestId("send-button"));

    expect(await screen.findByTestId("insufficient-tokens")).toHaveTextContent("This reply needs at least 2 tokens and you have 1 token");
    expect(api.requestsTo("POST", "/api/chats")).toHaveLength(0);
    expect(input).toHaveValue("Write me a long poem");
  });
});

describe("the cap", () => {
  it("is saved on the chat, asked for again in the quote, and can be removed", async () => {
    let cap: number | null = null;
    api.on("PATCH", "/api/chats/:id", (request) => {
      cap = (request.body as { cost_cap: number | null }).cost_cap;
      return { json: chat(7, { model: "mini", cost_cap: cap }) };
    });
    api.on("POST", "/api/chats/:id/quote", () => ({
      json: { min: 3, max: cap ?? 12, cap, model: "mini", price_version: 3 },
    }));
    const { user } = renderApp(api, "/chat/7");

    await user.type(await screen.findByTestId("chat-input"), "Summarise this");
    expect(await screen.findByTestId("quote")).toHaveTextContent("≈ 3–12 tokens");

    const field = screen.getByTestId("cost-cap");
    await user.type(field, "10{Enter}");
    await waitFor(() => expect(screen.getByTestId("quote")).toHaveTextContent("≈ 3–10 tokens (capped at 10)"));
    expect(api.requestsTo("PATCH", "/api/chats/7").map((r) => r.body)).toEqual([{ cost_cap: 10 }]);

    await user.clear(field);
    await user.tab();
    await waitFor(() => expect(screen.getByTestId("quote")).toHaveTextContent(/^≈ 3–12 tokens$/));
    expect(api.requestsTo("PATCH", "/api/chats/7").map((r) => r.body)).toEqual([{ cost_cap: 10 }, { cost_cap: null }]);
  });

  it("refuses what is not a whole number of tokens and keeps the saved cap", async () => {
    api.on("GET", "/api/chats", { json: [chat(7, { model: "mini", cost_cap: 6 })] });
    const { user } = renderApp(api, "/chat/7");
    const field = await screen.findByTestId("cost-cap");
    await waitFor(() => expect(field).toHaveValue(6));
    await user.clear(field);
    await user.type(field, "0{Enter}");
    expect(field).toHaveValue(6);
    expect(api.requestsTo("PATCH", "/api/chats/7")).toHaveLength(0);
  });
});

describe("after a reply", () => {
  const history: Message[] = [
    chatMessage({ id: 1, role: "user", content: "Q1" }),
    chatMessage({ id: 2, role: "assistant", content: "A1", tokens_charged: 4, cost: 4 }),
    chatMessage({ id: 3, role: "user", content: "Q2" }),
    chatMessage({ id: 4, role: "assistant", content: "A2", tokens_charged: 2, cost: 2, refunded: true, finish_reason: "length" }),
  ];

  it("shows what each reply cost, and a refunded reply as refunded", async () => {
    api.on("GET", "/api/chats/:id/messages", { json: history });
    renderApp(api, "/chat/7");
    const costs = await screen.findAllByTestId("message-cost");
    expect(costs.map((c) => c.textContent)).toEqual(["4 tokens", "2 tokens"]);
    expect(screen.getAllByTestId("refund-reply")).toHaveLength(1);
    const replies = screen.getAllByTestId("ai-message");
    expect(replies[0]?.parentElement).toContainElement(screen.getByTestId("refund-reply"));
    expect(replies[1]?.parentElement).toContainElement(screen.getByTestId("reply-refunded"));
    // Only the reply that stopped early says so.
    expect(screen.getAllByTestId("message-finish")).toHaveLength(1);
    expect(replies[1]?.parentElement).toContainElement(screen.getByTestId("message-finish"));
    expect(screen.getByTestId("message-finish")).toHaveTextContent("Stopped at the length limit");
  });

  it("refunds a reply once, with a reason, and shows the balance the server now has", async () => {
    let refunded = false;
    api.on("GET", "/api/payment/user/tokens", () => ({ json: balance(refunded ? 24 : 20) }));
    api.on("GET", "/api/chats/:id/messages", { json: history.slice(0, 2) });
    api.on("POST", "/api/chats/:id/messages/:mid/refund", () => {
      refunded = true;
      return { json: { refunded: 4, balance: 24, transaction_id: 99 } };
    });
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    const form = screen.getByTestId("refund-form");
    const submit = within(form).getByRole("button", { name: "Refund" });
    expect(submit).toBeDisabled();
    await user.click(within(form).getByRole("radio", { name: "Incomplete" }));
    await user.type(within(form).getByLabelText("Anything to add? (optional)"), "Stopped mid-sentence");
    await user.click(submit);

    expect(await screen.findByTestId("reply-refunded")).toHaveTextContent("Refunded — 4 tokens back");
    expect(screen.queryByTestId("refund-reply")).not.toBeInTheDocument();
    expect(screen.queryByTestId("refund-form")).not.toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/chats/7/messages/2/refund").map((r) => r.body)).toEqual([
      { reason: "incomplete", note: "Stopped mid-sentence" },
    ]);
    await waitFor(() => expect(screen.getByTestId("token-balance")).toHaveTextContent("24"));
  });

  it("says when the day's refunds are used up, in the person's language", async () => {
    window.localStorage.setItem("tokenbank.lang", "zh");
    api.on("GET", "/api/chats/:id/messages", { json: history.slice(0, 2) });
    api.on("POST", "/api/chats/:id/messages/:mid/refund", apiError(429, "refund_limit_reached", "Refund limit reached"));
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    await user.click(screen.getByRole("radio", { name: "内容错误" }));
    await user.click(screen.getByRole("button", { name: "退款" }));

    expect(await screen.findByTestId("refund-error")).toHaveTextContent("今天的退款次数已达上限，请明天再试。");
    expect(screen.queryByTestId("reply-refunded")).not.toBeInTheDocument();
    expect(api.requestsTo("POST", "/api/chats/7/messages/2/refund")[0]?.body).toEqual({ reason: "wrong" });
  });

  it("shows a reply refunded elsewhere as refunded", async () => {
    api.on("GET", "/api/chats/:id/messages", { json: history.slice(0, 2) });
    api.on("POST", "/api/chats/:id/messages/:mid/refund", apiError(409, "already_refunded", "Already refunded"));
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    await user.click(screen.getByRole("radio", { name: "Other" }));
    await user.click(screen.getByRole("button", { name: "Refund" }));

    expect(await screen.findByTestId("reply-refunded")).toHaveTextContent(/^Refunded$/);
    expect(screen.queryByTestId("refund-error")).not.toBeInTheDocument();
  });

  it("opens the reasons with the keyboard in mind and closes on Escape without asking", async () => {
    api.on("GET", "/api/chats/:id/messages", { json: history.slice(0, 2) });
    const { user } = renderApp(api, "/chat/7");

    await user.click(await screen.findByTestId("refund-reply"));
    expect(screen.getByRole("radio", { name: "Wrong" })).toHaveFocus();
    await user.keyboard("{Escape}");
    expect(screen.queryByTestId("refund-form")).not.toBeInTheDocument();
    expect(screen.getByTestId("refund-reply")).toBeInTheDocument();
    expect(api.requests.filter((r) => r.path.endsWith("/refund"))).toHaveLength(0);
  });

  it("renders the reply as Markdown while the person's own message stays plain text", async () => {
    api.on("GET", "/api/chats/:id/messages", {
      json: [
        chatMessage({ id: 1, role: "user", content: "**not bold** <b>x</b>" }),
        chatMessage({ id: 2, role: "assistant", content: "**bold** and `code`", tokens_charged: 1, cost: 1 }),
      ],
    });
    renderApp(api, "/chat/7");
    const ai = await screen.findByTestId("ai-message");
    await waitFor(() => expect(ai.querySelector("strong")).toHaveTextContent("bold"));
    expect(ai.querySelector("code")).toHaveTextContent("code");
    const mine = screen.getByTestId("user-message");
    expect(mine).toHaveTextContent("**not bold** <b>x</b>");
    expect(mine.querySelector("strong, b")).toBeNull();
  });
});
