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
  "ApiKeyCreate": {
    "name": {
      "minLength": 1,
      "maxLength": 100
    }
  },
  "AutoTopupIn": {
    "monthly_max_amount": {
      "minimum": 0,
      "maximum": 10000000000
    },
    "monthly_max_count": {
      "minimum": 0,
      "maximum": 1000
    },
    "threshold": {
      "minimum": 0,
      "maximum": 1000000000000
    },
    "tier": {
      "minLength": 1,
      "maxLength": 64
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
  "ChargeIn": {
    "amount": {
      "minimum": 1,
      "maximum": 1000000000
    },
    "description": {
      "maxLength": 500
    },
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
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
  "GrantIn": {
    "amount": {
      "minimum": 1,
      "maximum": 1000000000
    },
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "reason": {
      "minLength": 1,
      "maxLength": 500
    }
  },
  "HoldIn": {
    "amount": {
      "minimum": 1,
      "maximum": 1000000000
    },
    "description": {
      "maxLength": 500
    },
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "ttl_s": {
      "minimum": 1,
      "maximum": 86400
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
  "MeterChargeIn": {
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "quantity": {
      "minimum": 1,
      "maximum": 1000000
    }
  },
  "MeterCommitIn": {
    "reservation_id": {
      "minimum": 1,
      "maximum": 4611686018427388000
    }
  },
  "MeterReleaseIn": {
    "reservation_id": {
      "minimum": 1,
      "maximum": 4611686018427388000
    }
  },
  "MeterReserveIn": {
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "quantity": {
      "minimum": 1,
      "maximum": 1000000
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
  "PlanRequest": {
    "plan": {
      "minLength": 1,
      "maxLength": 64
    }
  },
  "PurchaseIn": {
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "return_url": {
      "minLength": 1,
      "maxLength": 2000
    },
    "tier": {
      "minLength": 1,
      "maxLength": 64
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
  },
  "WebhookEndpointCreate": {
    "url": {
      "minLength": 1,
      "maxLength": 2048
    }
  },
  "WebhookSecretRoll": {
    "expires_in_hours": {
      "minimum": 0,
      "maximum": 168
    }
  },
  "WidgetConfirmIn": {
    "payment_intent_id": {
      "maxLength": 255,
      "pattern": "^pi_[A-Za-z0-9_]{1,250}$"
    }
  },
  "WidgetPurchaseIn": {
    "idempotency_key": {
      "pattern": "^[\\x21-\\x7e]{1,200}$"
    },
    "tier": {
      "minLength": 1,
      "maxLength": 64
    }
  }
} as const;
