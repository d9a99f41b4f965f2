import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useRef, useState, type FormEvent } from "react";
import { useLocation } from "wouter";
import { useApi } from "../../api/ApiProvider";
import { unwrap } from "../../api/client";
import type { AuthResult } from "../../api/types";
import { setSessionToken } from "../../auth/session";
import { useI18n } from "../../i18n/useI18n";
import { describeAuthError, validateAuthFields, type AuthField, type FieldErrors } from "./authErrors";

export type Mode = "login" | "register";

/**
 * The sign-in / sign-up form's state: fields checked before sending, the server's
 * answer split into per-field and form-level messages, focus on the first problem.
 */
export function useAuthForm(mode: Mode) {
  const i18n = useI18n();
  const { t } = i18n;
  const api = useApi();
  const queryClient = useQueryClient();
  const [, navigate] = useLocation();
  const [values, setValues] = useState({ username: "", email: "", password: "" });
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const refs = {
    username: useRef<HTMLInputElement>(null),
    email: useRef<HTMLInputElement>(null),
    password: useRef<HTMLInputElement>(null),
  };
  const fieldOrder: AuthField[] = mode === "register" ? ["username", "email", "password"] : ["username", "password"];

  const submit = useMutation({
    mutationFn: (): Promise<AuthResult> =>
      mode === "register"
        ? unwrap(api.client.POST("/api/auth/register", {
            body: {
              username: values.username.trim(),
              email: values.email.trim(),
              password: values.password,
              locale: i18n.lang,  // the language of the emails we send
            },
          }))
        : unwrap(api.client.POST("/api/auth/login", {
            body: { username: values.username.trim(), password: values.password },
          })),
    onSuccess: (result) => {
      queryClient.clear(); // nothing of a previous account may linger
      setSessionToken(result.access_token);
      navigate("/chat");
    },
    onError: (error) => {
      const { fields, form } = describeAuthError(i18n, error);
      setFieldErrors(fields);
      setFormError(form);
      const first = fieldOrder.find((name) => fields[name]);
      if (first) refs[first].current?.focus();
    },
  });

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (submit.isPending) return;
    const errors = validateAuthFields(t, values, mode);
    setFieldErrors(errors);
    setFormError(null);
    const first = fieldOrder.find((name) => errors[name]);
    if (first) {
      refs[first].current?.focus();
      return;
    }
    submit.mutate();
  };

  const update = (name: AuthField) => (event: { target: { value: string } }) => {
    setValues((prev) => ({ ...prev, [name]: event.target.value }));
    if (fieldErrors[name]) setFieldErrors((prev) => ({ ...prev, [name]: undefined }));
  };
  return { values, fieldErrors, formError, refs, submit, onSubmit, update };
}
