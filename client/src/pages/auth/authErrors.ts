import { ApiError, fieldProblems } from "../../api/errors";
import { limits } from "../../api/limits.gen";
import type { I18n } from "../../i18n/I18nProvider";
import type { MessageKey } from "../../i18n/messages";
import { errorText } from "../../lib/errorText";

export type AuthField = "username" | "email" | "password";
export type FieldErrors = Partial<Record<AuthField, string>>;

const fieldForCode: Record<string, AuthField> = {
  username_taken: "username",
  email_taken: "email",
};

const { username: USERNAME, password: PASSWORD } = limits.RegisterRequest;
/** The server's limits, for texts that state them: pass to `t()` with the auth keys. */
export const authLimitVars = {
  usernameMin: USERNAME.minLength,
  usernameMax: USERNAME.maxLength,
  passwordMin: PASSWORD.minLength,
};
/**
 * The server's rule for usernames; it stays the authority, this only saves a round trip.
 * Lengths come from its schema; the characters are not in the schema, so they are stated here.
 */
const USERNAME_PATTERN = new RegExp(`^[A-Za-z0-9_.-]{${USERNAME.minLength},${USERNAME.maxLength}}$`);

const genericForField: Record<AuthField, MessageKey> = {
  username: "validation.usernameRule",
  email: "validation.email",
  password: "validation.passwordRule",
};

function isAuthField(name: string): name is AuthField {
  return name === "username" || name === "email" || name === "password";
}

/** Splits a failed sign-up / sign-in into per-field messages and one form-level message. */
export function describeAuthError(
  i18n: Pick<I18n, "t" | "has" | "lang">,
  error: unknown,
): { fields: FieldErrors; form: string | null } {
  if (!(error instanceof ApiError)) return { fields: {}, form: errorText(i18n, error) };
  const direct = fieldForCode[error.code];
  if (direct) return { fields: { [direct]: errorText(i18n, error) }, form: null };

  const fields: FieldErrors = {};
  for (const problem of fieldProblems(error)) {
    if (!isAuthField(problem.field) || fields[problem.field]) continue;
    // English speakers get the server's precise wording; others a translated hint.
    fields[problem.field] =
      i18n.lang === "en" && problem.message ? problem.message : i18n.t(genericForField[problem.field], authLimitVars);
  }
  if (Object.keys(fields).length > 0) return { fields, form: null };
  return { fields: {}, form: errorText(i18n, error) };
}

/** Checks done before sending, so obvious mistakes never cost a round trip. */
export function validateAuthFields(
  t: I18n["t"],
  values: Partial<Record<AuthField, string>>,
  mode: "login" | "register",
): FieldErrors {
  const errors: FieldErrors = {};
  const username = values.username?.trim() ?? "";
  if (!username) errors.username = t("validation.required");
  else if (mode === "register" && username.length < USERNAME.minLength) {
    errors.username = t("validation.usernameShort", authLimitVars);
  }
  else if (mode === "register" && !USERNAME_PATTERN.test(username)) errors.username = t("validation.usernameChars");
  if (mode === "register") {
    const email = values.email?.trim() ?? "";
    if (!email) errors.email = t("validation.required");
    else if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) errors.email = t("validation.email");
  }
  const password = values.password ?? "";
  if (!password) errors.password = t("validation.required");
  else if (mode === "register" && password.length < PASSWORD.minLength) {
    errors.password = t("validation.passwordShort", authLimitVars);
  }
  else if (mode === "register" && !(/\p{L}/u.test(password) && /\d/.test(password))) {
    errors.password = t("validation.passwordMix");
  }
  return errors;
}
