/**
 * Asking the AI for a reply. Streams over SSE when the server offers it and
 * falls back to the plain endpoint otherwise. Both calls carry the same
 * Idempotency-Key, so a fallback after a broken stream never charges twice.
 */
import { sleep } from "../lib/sleep";
import { readSse } from "../lib/sse";
import { unwrap, type Api } from "./client";
import { ApiError, networkError, toApiError } from "./errors";
import { toChatId } from "./queries";
import type { components } from "./schema";
import type { GenerateResult } from "./types";

export interface GenerateOptions {
  idempotencyKey: string;
  /** Receives each piece of text as it streams in. */
  onDelta?: (text: string) => void;
  stream?: boolean;
  /** The model to answer with; the chat's (or the server's default) when absent. */
  model?: string;
}

type GenerateBody = components["schemas"]["GenerateRequest"];

/** The request body: without `model` the server answers with the chat's model. */
function generateBody(content: string, model: string | undefined): GenerateBody {
  return model ? { content, model } : { content };
}

function isGenerateResult(value: unknown): value is GenerateResult {
  return typeof value === "object" && value !== null && "ai_message" in value;
}

async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return null;
  }
}

function generatePlain(api: Api, chatId: string, content: string, model: string | undefined, key: string) {
  return unwrap(
    api.client.POST("/api/chats/{chat_id}/generate", {
      params: { path: { chat_id: toChatId(chatId) } },
      body: generateBody(content, model),
      headers: { "Idempotency-Key": key },
    }),
  );
}

/** Resolves with the reply, `null` when streaming isn't available, or throws ApiError. */
async function generateStreamed(
  api: Api,
  chatId: string,
  content: string,
  model: string | undefined,
  key: string,
  onDelta: (text: string) => void,
): Promise<GenerateResult | null> {
  const send = () =>
    fetch(`${api.baseUrl}/api/chats/${encodeURIComponent(chatId)}/generate/stream`, {
      method: "POST",
      headers: {
        ...api.authHeaders(),
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        "Idempotency-Key": key,
      },
      body: JSON.stringify(generateBody(content, model)),
    });
  let response: Response;
  try {
    const sentToken = api.authHeaders().Authorization?.slice("Bearer ".length) ?? null;
    response = await send();
    if (response.status === 401 && sentToken) {
      // Expired access token: renew once and send again (same Idempotency-Key).
      const renewal = await api.renew(sentToken);
      if (renewal.kind === "renewed") response = await send();
    }
  } catch {
    return null; // let the plain endpoint try (and report the network error)
  }
  if (response.status === 404 || response.status === 405 || response.status === 501) return null;
  if (!response.ok) {
    if (response.status === 401) api.onUnauthorized();
    throw toApiError(response.status, await readJson(response));
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (!type.includes("text/event-stream") || !response.body) {
    const body = await readJson(response);
    return isGenerateResult(body) ? body : null;
  }
  try {
    for await (const event of readSse(response.body)) {
      const data: unknown = event.data ? JSON.parse(event.data) : null;
      if (event.event === "delta" && typeof data === "object" && data && "text" in data) {
        onDelta(String(data.text));
      } else if (event.event === "done" && isGenerateResult(data)) {
        return data;
      } else if (event.event === "error") {
        // The stream itself succeeded; the event's code says what went wrong.
        throw toApiError(response.status, { error: data });
      }
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // A broken stream: the plain endpoint with the same key finishes the job.
  }
  return null;
}

/** How long to keep asking while the server finishes a reply started under the same key. */
const IN_PROGRESS_WAIT_MS = 30_000;
const IN_PROGRESS_POLL_MS = 1_000;

export async function generateReply(
  api: Api,
  chatId: string,
  content: string,
  { idempotencyKey, onDelta, stream = true, model }: GenerateOptions,
): Promise<GenerateResult> {
  if (stream && onDelta) {
    const streamed = await generateStreamed(api, chatId, content, model, idempotencyKey, onDelta);
    if (streamed) return streamed;
  }
  const deadline = Date.now() + IN_PROGRESS_WAIT_MS;
  for (;;) {
    try {
      return await generatePlain(api, chatId, content, model, idempotencyKey);
    } catch (error) {
      // After a broken stream the first generation may still be running; its
      // result comes back under the same key once it is done.
      const inProgress = error instanceof ApiError && error.code === "generation_in_progress";
      if (!inProgress || Date.now() + IN_PROGRESS_POLL_MS > deadline) {
        throw error instanceof ApiError ? error : networkError(error);
      }
      await sleep(IN_PROGRESS_POLL_MS);
    }
  }
}
