import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { LANG_STORAGE_KEY } from "../../i18n/I18nProvider";
import { apiError, FakeApi, fakeApiPerTest } from "../../test/fakeApi";
import { renderApp } from "../../test/render";

let api: FakeApi;
fakeApiPerTest((started) => {
  api = started;
});

describe("language toggle", () => {
  it("switches the whole UI to Chinese and back, and remembers the choice", async () => {
    const first = renderApp(api, "/chat");
    expect(await screen.findByTestId("nav-payment")).toHaveTextContent("Buy tokens");
    expect(screen.getByTestId("send-button")).toHaveTextContent("Send");
    expect(await screen.findByText("1 token per reply")).toBeInTheDocument();
    expect(document.documentElement.lang).toBe("en");

    await first.user.click(screen.getByTestId("language-toggle"));

    expect(screen.getByTestId("nav-payment")).toHaveTextContent("购买代币");
    expect(screen.getByTestId("nav-chat")).toHaveTextContent("对话");
    expect(screen.getByTestId("nav-history")).toHaveTextContent("记录");
    expect(screen.getByTestId("send-button")).toHaveTextContent("发送");
    expect(screen.getByText("每次回复 1 个代币")).toBeInTheDocument();
    expect(screen.getByTestId("language-toggle")).toHaveTextContent("English");
    expect(document.documentElement.lang).toBe("zh-CN");
    expect(window.localStorage.getItem(LANG_STORAGE_KEY)).toBe("zh");

    // A fresh visit keeps Chinese.
    first.unmount();
    const second = renderApp(api, "/history");
    expect(await screen.findByTestId("nav-history")).toHaveTextContent("记录");

    await second.user.click(screen.getByTestId("language-toggle"));
    expect(screen.getByTestId("nav-history")).toHaveTextContent("History");
    expect(window.localStorage.getItem(LANG_STORAGE_KEY)).toBe("en");
  });

  it("translates error codes from the server", async () => {
    window.localStorage.setItem(LANG_STORAGE_KEY, "zh");
    api.on("POST", "/api/auth/login", apiError(401, "invalid_credentials", "Invalid username or password"));
    const { user } = renderApp(api, "/login", { signedIn: false });

    await user.type(await screen.findByLabelText("用户名"), "ada");
    await user.type(screen.getByLabelText("密码"), "wrong-password");
    await user.click(screen.getByRole("button", { name: "登录" }));

    expect(await screen.findByRole("alert")).toHaveTextContent("用户名或密码错误。");
  });
});
