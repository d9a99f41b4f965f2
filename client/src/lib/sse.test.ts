import { describe, expect, it } from "vitest";
import { readSse, type SseEvent } from "./sse";

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      controller.close();
    },
  });
}

async function collect(chunks: string[]): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const event of readSse(streamOf(chunks))) out.push(event);
  return out;
}

describe("readSse", () => {
  it("parses named events, CRLF line ends and events split across chunks", async () => {
    const events = await collect([
      ": keep-alive\r\n\r\nevent: delta\r\ndata: {\"text\":",
      "\"Hi\"}\r",
      "\n\r\nevent: done\ndata: {}\n\n",
    ]);
    expect(events).toEqual([
      { event: "delta", data: '{"text":"Hi"}' },
      { event: "done", data: "{}" },
    ]);
  });

  it("joins multi-line data and keeps a final event without a blank line", async () => {
    const events = await collect(["data: one\ndata: two\n\nevent: error\ndata: {\"code\":\"x\"}"]);
    expect(events).toEqual([
      { event: "message", data: "one\ntwo" },
      { event: "error", data: '{"code":"x"}' },
    ]);
  });
});
