import { QueryClientProvider, type QueryClient } from "@tanstack/react-query";
import { lazy, Suspense, type ReactNode } from "react";
import { Redirect, Route, Router, Switch } from "wouter";
import { ApiProvider } from "./api/ApiProvider";
import type { Api } from "./api/client";
import { useSessionToken } from "./auth/session";
import { AppShell } from "./components/layout/AppShell";
import { Spinner } from "./components/ui/Spinner";
import { I18nProvider } from "./i18n/I18nProvider";
import ForgotPasswordPage from "./pages/auth/ForgotPasswordPage";
import LoginPage from "./pages/auth/LoginPage";
import RegisterPage from "./pages/auth/RegisterPage";
import ResetPasswordPage from "./pages/auth/ResetPasswordPage";
import VerifyEmailPage from "./pages/auth/VerifyEmailPage";
import ChatPage from "./pages/chat";
import NotFoundPage from "./pages/NotFoundPage";

// The payment page carries Stripe's React bindings; load it when first visited.
const PaymentPage = lazy(() => import("./pages/payment"));
const HistoryPage = lazy(() => import("./pages/history"));
const AdminPage = lazy(() => import("./pages/admin"));
const SettingsPage = lazy(() => import("./pages/settings"));
const SubscriptionPage = lazy(() => import("./pages/subscription"));
// The hosted payment page other apps send their customers to (a signed link, no sign-in).
const CheckoutPage = lazy(() => import("./pages/checkout"));

type LocationHook = Parameters<typeof Router>[0]["hook"];

export interface AppProps {
  api: Api;
  queryClient: QueryClient;
  /** Tests pass a memory location; the browser uses its address bar. */
  locationHook?: LocationHook;
}

function Loading() {
  return (
    <div className="flex flex-1 items-center justify-center py-24 text-brand-600">
      <Spinner className="size-6" />
    </div>
  );
}

/** Signed-out visitors go to /login. */
function Private({ children }: { children: ReactNode }) {
  const token = useSessionToken();
  if (!token) return <Redirect to="/login" replace />;
  return (
    <AppShell>
      <Suspense fallback={<Loading />}>{children}</Suspense>
    </AppShell>
  );
}

/** Signed-in people skip the sign-in forms. */
function Public({ children }: { children: ReactNode }) {
  const token = useSessionToken();
  if (token) return <Redirect to="/chat" replace />;
  return <>{children}</>;
}

export function AppRoutes() {
  return (
    <Switch>
      <Route path="/login"><Public><LoginPage /></Public></Route>
      <Route path="/register"><Public><RegisterPage /></Public></Route>
      <Route path="/forgot-password"><Public><ForgotPasswordPage /></Public></Route>
      {/* Emailed links open these signed in or not. */}
      <Route path="/verify-email"><VerifyEmailPage /></Route>
      <Route path="/reset-password"><ResetPasswordPage /></Route>
      <Route path="/checkout"><Suspense fallback={<Loading />}><CheckoutPage /></Suspense></Route>
      <Route path="/settings"><Private><SettingsPage /></Private></Route>
      <Route path="/chat/:id?"><Private><ChatPage /></Private></Route>
      <Route path="/payment"><Private><PaymentPage /></Private></Route>
      <Route path="/history"><Private><HistoryPage /></Private></Route>
      <Route path="/subscription"><Private><SubscriptionPage /></Private></Route>
      <Route path="/admin/*?"><Private><AdminPage /></Private></Route>
      <Route path="/"><Redirect to="/chat" replace /></Route>
      <Route><Private><NotFoundPage /></Private></Route>
    </Switch>
  );
}

export function App({ api, queryClient, locationHook }: AppProps) {
  const routes = <AppRoutes />;
  return (
    <I18nProvider>
      <QueryClientProvider client={queryClient}>
        <ApiProvider api={api}>
          {locationHook ? <Router hook={locationHook}>{routes}</Router> : <Router>{routes}</Router>}
        </ApiProvider>
      </QueryClientProvider>
    </I18nProvider>
  );
}
