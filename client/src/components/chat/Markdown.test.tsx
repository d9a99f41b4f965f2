import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { render } from "@testing-library/react";
import { I18nProvider } from "../../i18n/I18nProvider";
import { Markdown } from "./Markdown";

function show(text: string) {
  const user = userEvent.setup();
  const view = render(
    <I18nProvider>
      <div data-testid="reply">
        <Markdown text={text} />
      </div>
    </I18nProvider>,
  );
  return { user, reply: screen.getByTestId("reply"), ...view };
}

describe("AI replies as Markdown", () => {
  it("renders a code block with a copy button that copies the code", async () => {
    const { user, reply } = show("Run this:\n\n```python\nprint('hi')\nx = 1\n```\n");
    const code = reply.querySelector("pre code");
    expect(code).toHaveTextContent("print('hi') x = 1");
    expect(code).toHaveClass("language-python");

    await user.click(within(reply).getByRole("button", { name: "Copy" }));
    expect(await navigator.clipboard.readText()).toBe("print('hi')\nx = 1");
    expect(within(reply).getByRole("button", { name: "Copied" })).toBeInTheDocument();
  });

  it("renders GitHub tables and lists", () => {
    const { reply } = show(
      "| Plan | Tokens |\n| --- | ---: |\n| Basic | 300 |\n| Pro | 1000 |\n\n- one\n- two\n\n1. first\n2. second\n\n- [x] done\n",
    );
    const table = within(reply).getByRole("table");
    expect(within(table).getAllByRole("columnheader").map((c) => c.textContent)).toEqual(["Plan", "Tokens"]);
    expect(within(table).getAllByRole("row")).toHaveLength(3);
    const lists = within(reply).getAllByRole("list");
    expect(lists.map((l) => l.tagName)).toEqual(["UL", "OL", "UL"]);
    expect(within(lists[0] as HTMLElement).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["one", "two"]);
    expect(within(reply).getByRole("checkbox")).toBeChecked();
    expect(within(reply).getByRole("checkbox")).toBeDisabled();
  });

  it("shows HTML in a reply as text, never as elements", () => {
    const { reply } = show(
      'Look: <script>window.hacked = true</script> and <img src=x onerror="window.hacked = true"> and <b>bold</b>\n\n<div onclick="alert(1)">block</div>',
    );
    expect(reply.querySelector("script, img, b, div[onclick], [onerror], [onclick]")).toBeNull();
    expect(reply).toHaveTextContent("<script>window.hacked = true</script>");
    expect(reply).toHaveTextContent('<img src=x onerror="window.hacked = true">');
    expect(reply).toHaveTextContent('<div onclick="alert(1)">block</div>');
    expect((window as { hacked?: boolean }).hacked).toBeUndefined();
  });

  it("drops script URLs and opens links in a new tab without opener or referrer", () => {
    const { reply } = show("[docs](https://example.com/docs) and [evil](javascript:alert(1)) and [data](data:text/html,hi)");
    const docs = within(reply).getByRole("link", { name: "docs" });
    expect(docs).toHaveAttribute("href", "https://example.com/docs");
    expect(docs).toHaveAttribute("target", "_blank");
    expect(docs).toHaveAttribute("rel", "noopener noreferrer");
    for (const name of ["evil", "data"]) {
      const href = within(reply).getByText(name).closest("a")?.getAttribute("href") ?? "";
      expect(href).not.toMatch(/^(javascript|data):/i);
    }
  });

  it("loads no images: an image becomes a link to it", () => {
    const { reply } = show("![a chart](https://example.com/chart.png)");
    expect(reply.querySelector("img")).toBeNull();
    const link = within(reply).getByRole("link", { name: "a chart" });
    expect(link).toHaveAttribute("href", "https://example.com/chart.png");
    expect(link).toHaveAttribute("rel", "noopener noreferrer");
  });

  it("writes no inline styles (the Content-Security-Policy stays strict)", () => {
    const { reply } = show('| a | b |\n| :-- | --: |\n| 1 | 2 |\n\n<span style="color:red">x</span>');
    expect(reply.querySelector("[style]")).toBeNull();
    const [left, right] = within(reply).getAllByRole("columnheader");
    expect(left).toHaveClass("text-left");
    expect(right).toHaveClass("text-right");
  });
});
