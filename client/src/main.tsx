import { QueryClient } from "@tanstack/react-query";
import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { ApiError } from "./api/errors";
import { createApi } from "./api/client";
import { App } from "./App";
import { getSessionToken, setSessionToken } from "./auth/session";
import "./index.css";

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // Client errors (4xx) will not fix themselves; retry only network and server failures.
      retry: (failures, error) =>
        failures < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
      refetchOnWindowFocus: true,
    },
  },
});

const api = createApi({
  baseUrl: "",
  getToken: getSessionToken,
  onUnauthorized: () => {
    setSessionToken(null);
    queryClient.clear();
  },
});

const root = document.getElementById("root");
if (!root) throw new Error("index.html needs a #root element");
createRoot(root).render(
  <StrictMode>
    <App api={api} queryClient={queryClient} />
  </StrictMode>,
);
