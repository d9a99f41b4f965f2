/**
 * An AI reply's text. The Markdown renderer is about a third of the app's script, so it
 * is its own chunk: the chat page starts loading it when it opens, and until it is there
 * a reply shows as plain text (never as HTML).
 */
import { lazy, Suspense } from "react";
import type { Markdown as MarkdownView } from "./Markdown";

let loading: Promise<{ default: typeof MarkdownView }> | null = null;
function load() {
  loading ??= import("./Markdown").then((module) => ({ default: module.Markdown }));
  return loading;
}

const Markdown = lazy(load);

/** Start fetching the renderer before the first reply needs it. */
export function preloadMarkdown(): void {
  void load();
}

export function ReplyText({ text }: { text: string }) {
  return (
    <Suspense fallback={<div className="whitespace-pre-wrap">{text}</div>}>
      <Markdown text={text} />
    </Suspense>
  );
}
