// Generated from openapi.json by scripts/gen-limits.mjs (`npm run gen:api`). Do not edit.
/** The server's limits on request fields, by schema and field. */
export const limits = {
  "AdminTokensRequest": {
    "amount": {
      "minimum": -1000000000,
      "maximum": 1000000000
    },
    "reason": {
      "minLength": 3,
      "maxLength": 500
    }
  },
  "ChangePasswordRequest": {
    "current_password": {
      "minLength": 1,
      "maxLength": 128
    },
    "new_password": {
      "minLength": 8,
      "maxLength": 128
    }
  },
  "ConfirmPaymentRequest": {
    "payment_intent_id": {
      "minLength": 1,
      "maxLength": 255,
      "pattern": "^[A-Za-z0-9_]+$"
    }
  },
  "CreatePaymentIntentRequest": {
    "tier": {
      "minLength": 1,
      "maxLength": 64
    }
  },
  "LoginRequest": {
    "password": {
      "minLength": 1,
      "maxLength": 128
    },
    "username": {
      "minLength": 1,
      "maxLength": 254
    }
  },
  "PasswordResetComplete": {
    "new_password": {
      "minLength": 8,
      "maxLength": 128
    },
    "token": {
      "minLength": 1,
      "maxLength": 200
    }
  },
  "RegisterRequest": {
    "password": {
      "minLength": 8,
      "maxLength": 128
    },
    "username": {
      "minLength": 3,
      "maxLength": 32
    }
  },
  "VerifyEmailRequest": {
    "token": {
      "minLength": 1,
      "maxLength": 200
    }
  }
} as const;
