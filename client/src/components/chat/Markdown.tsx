/**
 * An AI reply as GitHub-flavoured Markdown (tables, lists, task lists, code blocks with a
 * copy button). It renders React elements, never an HTML string: HTML inside a reply shows
 * as text, `javascript:` and other unsafe URLs are dropped, links open in a new tab without
 * an opener or referrer, and images become links (nothing is loaded from a reply's URLs).
 * No inline script or style is produced, so the app's Content-Security-Policy holds.
 */
import { useState, type CSSProperties, type ReactNode } from "react";
import ReactMarkdown, { type Components, type ExtraProps } from "react-markdown";
import remarkGfm from "remark-gfm";
import { useI18n } from "../../i18n/useI18n";
import { Icon } from "../ui/Icon";

type HastNode = NonNullable<ExtraProps["node"]> | { type: string; value?: string; children?: unknown[] };

/** The text inside a syntax-tree node (what the copy button copies). */
function textOf(node: unknown): string {
  if (typeof node !== "object" || node === null) return "";
  const { type, value, children } = node as HastNode & { value?: unknown; children?: unknown };
  if (type === "text" && typeof value === "string") return value;
  return Array.isArray(children) ? children.map(textOf).join("") : "";
}

function CodeBlock({ node, children }: { node?: ExtraProps["node"]; children?: ReactNode }) {
  const { t } = useI18n();
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(textOf(node).replace(/\n$/, ""));
      setCopied(true);
      window.setTimeout(() => setCopied(false), 2000);
    } catch {
      setCopied(false);
    }
  };
  return (
    <div className="markdown-code group relative">
      <button
        type="button"
        data-testid="copy-code"
        onClick={() => void copy()}
        className="absolute right-2 top-2 inline-flex items-center gap-1 rounded-md bg-slate-700/80 px-2 py-1 text-xs font-medium text-slate-100 hover:bg-slate-600"
      >
        <Icon name={copied ? "check" : "copy"} className="size-3.5" />
        {copied ? t("chat.copied") : t("chat.copyCode")}
      </button>
      <pre>{children}</pre>
    </div>
  );
}

const alignClass: Record<string, string> = { left: "text-left", center: "text-center", right: "text-right" };

/** A column's alignment as a class, not the inline style the renderer would write. */
function aligned(style: CSSProperties | undefined): string | undefined {
  const align = style?.textAlign;
  return typeof align === "string" ? alignClass[align] : undefined;
}

const components: Components = {
  th: ({ style, children }) => <th className={aligned(style) ?? "text-left"}>{children}</th>,
  td: ({ style, children }) => <td className={aligned(style)}>{children}</td>,
  pre: ({ node, children }) => <CodeBlock node={node}>{children}</CodeBlock>,
  a: ({ href, children }) => (
    <a href={href} target="_blank" rel="noopener noreferrer">
      {children}
    </a>
  ),
  // A reply's images are not fetched (a tracking pixel, a page the CSP would block anyway).
  img: ({ src, alt }) =>
    typeof src === "string" && src ? (
      <a href={src} target="_blank" rel="noopener noreferrer">
        {alt || src}
      </a>
    ) : (
      <>{alt}</>
    ),
  table: ({ children }) => (
    <div className="markdown-table">
      <table>{children}</table>
    </div>
  ),
};

export function Markdown({ text }: { text: string }) {
  return (
    <div className="markdown">
      <ReactMarkdown remarkPlugins={[remarkGfm]} components={components}>
        {text}
      </ReactMarkdown>
    </div>
  );
}
