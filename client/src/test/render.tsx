import type { Stripe } from "@stripe/stripe-js";
import { QueryClient } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { ReactElement } from "react";
import { Router } from "wouter";
import { memoryLocation } from "wouter/memory-location";
import { ApiProvider } from "../api/ApiProvider";
import { createApi } from "../api/client";
import { App } from "../App";
import { getSessionToken, setSessionToken } from "../auth/session";
import { StripeLoaderContext } from "../components/payment/stripeLoader";
import { I18nProvider } from "../i18n/I18nProvider";
import { QueryClientProvider } from "@tanstack/react-query";
import type { FakeApi } from "./fakeApi";

interface Options {
  signedIn?: boolean;
  stripe?: Stripe;
}

function setup(fake: FakeApi, path: string, { signedIn = true }: Options) {
  if (signedIn) setSessionToken("test-session-token");
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  const api = createApi({
    baseUrl: fake.url,
    getToken: getSessionToken,
    onUnauthorized: () => setSessionToken(null),
  });
  const location = memoryLocation({ path, record: true });
  return { queryClient, api, location, user: userEvent.setup() };
}

/** The whole app at `path`, talking to the fake API. */
export function renderApp(fake: FakeApi, path: string, options: Options = {}) {
  const ctx = setup(fake, path, options);
  const loader = () => Promise.resolve(options.stripe ?? null);
  const view = render(
    <StripeLoaderContext.Provider value={loader}>
      <App api={ctx.api} queryClient={ctx.queryClient} locationHook={ctx.location.hook} />
    </StripeLoaderContext.Provider>,
  );
  return { ...ctx, ...view };
}

/** One component with the app's providers around it. */
export function renderWithProviders(fake: FakeApi, ui: ReactElement, options: Options = {}) {
  const ctx = setup(fake, "/", options);
  const view = render(
    <I18nProvider>
      <QueryClientProvider client={ctx.queryClient}>
        <ApiProvider api={ctx.api}>
          <Router hook={ctx.location.hook}>{ui}</Router>
        </ApiProvider>
      </QueryClientProvider>
    </I18nProvider>,
  );
  return { ...ctx, ...view };
}
