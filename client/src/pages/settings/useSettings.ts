import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import { setSessionToken } from "../../auth/session";
import { useI18n } from "../../i18n/useI18n";
import { validateAuthFields } from "../auth/authErrors";

/** The change-password form: checked first, then sent; this browser keeps its session. */
export function useChangePassword() {
  const { t } = useI18n();
  const api = useApi();
  const [values, setValues] = useState({ current: "", next: "" });
  const [fieldError, setFieldError] = useState<string | null>(null);
  const change = useMutation({
    mutationFn: () =>
      unwrap(
        api.client.POST("/api/auth/change-password", {
          body: { current_password: values.current, new_password: values.next },
        }),
      ),
    onSuccess: (result) => {
      // Every session ended with the change; this browser carries on with the new one.
      setSessionToken(result.access_token);
      setValues({ current: "", next: "" });
    },
  });
  const setField = (field: "current" | "next", value: string) => setValues((v) => ({ ...v, [field]: value }));
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const problem = validateAuthFields(t, { username: "-", password: values.next }, "register").password;
    setFieldError(problem ?? null);
    if (!problem && values.current) change.mutate();
  };
  return { values, setField, fieldError, submit, change };
}

/** Ends every session, this one included, and goes to sign-in. */
export function useSignOutEverywhere() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  return useMutation({
    mutationFn: () => unwrap(api.client.POST("/api/auth/logout-all")),
    onSuccess: () => {
      setSessionToken(null);
      queryClient.clear();
      navigate("/login");
    },
  });
}
