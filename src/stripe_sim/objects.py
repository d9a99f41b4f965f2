"""Builders of Stripe-shaped JSON objects (same fields and types as Stripe's).

The simulator keeps its state as these plain dicts: what the API answers, what
events snapshot and what webhooks carry are the very same structures.
"""

from __future__ import annotations

import uuid
from typing import Any

from .cards import CardDetails, Decline, brand_of, card_for, display_brand, fingerprint
from .ids import new_id, new_secret, random_token

Obj = dict[str, Any]

API_VERSION = "2026-10-28.endive"  # the installed stripe SDK's pinned version
DISPUTE_FEE = 1500


def _address(postal_code: str | None = None, country: str | None = None) -> Obj:
    return {
        "city": None,
        "country": country,
        "line1": None,
        "line2": None,
        "postal_code": postal_code,
        "state": None,
    }


def billing_details(
    name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    address: Obj | None = None,
) -> Obj:
    return {
        "address": {**_address(), **(address or {})},
        "email": email,
        "name": name,
        "phone": phone,
        "tax_id": None,
    }


def _payment_method(
    pm_type: str, details: Obj, billing: Obj, metadata: dict[str, str], created: int
) -> Obj:
    """A PaymentMethod of ``pm_type`` whose own fields are ``details``; keys in Stripe's order
    (``id``, ``object``, then alphabetical)."""
    fields: Obj = {
        "allow_redisplay": "unspecified",
        "billing_details": billing,
        "created": created,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": metadata,
        "type": pm_type,
        pm_type: details,
    }
    return {"id": new_id("pm"), "object": "payment_method", **dict(sorted(fields.items()))}


def payment_method(
    details: CardDetails, billing: Obj, metadata: dict[str, str], created: int
) -> Obj:
    brand = brand_of(details.number)
    card = {
        "brand": brand,
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": "unchecked" if details.cvc else None,
        },
        "country": "US",
        "display_brand": display_brand(brand),
        "exp_month": details.exp_month,
        "exp_year": details.exp_year,
        "fingerprint": fingerprint(details.number),
        "funding": card_for(details.number).funding,
        "generated_from": None,
        "last4": details.number[-4:],
        "networks": {"available": [brand], "preferred": None},
        "regulated_status": "unregulated",
        "three_d_secure_usage": {"supported": True},
        "wallet": None,
    }
    return _payment_method("card", card, billing, metadata, created)


def sepa_payment_method(iban: str, billing: Obj, metadata: dict[str, str], created: int) -> Obj:
    sepa_debit = {
        "bank_code": iban[4:12] if iban.startswith("DE") else iban[4:9],
        "branch_code": "",
        "country": iban[:2],
        "fingerprint": fingerprint(iban),
        "generated_from": {"charge": None, "setup_attempt": None},
        "last4": iban[-4:],
    }
    return _payment_method("sepa_debit", sepa_debit, billing, metadata, created)


def us_bank_account_payment_method(
    account: str, routing: str, billing: Obj, metadata: dict[str, str], created: int
) -> Obj:
    us_bank_account = {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "financial_connections_account": None,
        "fingerprint": fingerprint(account),
        "last4": account[-4:],
        "networks": {"preferred": "ach", "supported": ["ach"]},
        "routing_number": routing,
        "status_details": {},
    }
    return _payment_method("us_bank_account", us_bank_account, billing, metadata, created)


def payment_intent(
    *,
    amount: int,
    currency: str,
    created: int,
    metadata: dict[str, str],
    description: str | None,
    receipt_email: str | None,
    payment_method_types: list[str] | None,
    automatic_payment_methods: Obj | None,
) -> Obj:
    pi_id = new_id("pi")
    automatic = automatic_payment_methods is not None
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": automatic_payment_methods,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": new_secret(pi_id),
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": (
            {"id": new_id("pmc"), "parent": None} if automatic else None
        ),
        "payment_method_options": {
            "card": {
                "installments": None,
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": payment_method_types or ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": None,
        "transfer_group": None,
    }


def three_d_secure_result() -> Obj:
    return {
        "authentication_flow": "challenge",
        "electronic_commerce_indicator": "05",
        "exemption_indicator": None,
        "result": "authenticated",
        "result_reason": None,
        "transaction_id": str(uuid.uuid4()),
        "version": "2.2.0",
    }


def _card_details_on_charge(
    pm: Obj, amount: int, *, succeeded: bool, cvc_check: str | None, three_d_secure: Obj | None
) -> Obj:
    card = pm["card"]
    postal = pm["billing_details"]["address"]["postal_code"]
    return {
        "amount_authorized": amount if succeeded else None,
        "authorization_code": random_token(6).upper() if succeeded else None,
        "brand": card["brand"],
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": "pass" if postal else None,
            "cvc_check": cvc_check,
        },
        "country": card["country"],
        "exp_month": card["exp_month"],
        "exp_year": card["exp_year"],
        "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"],
        "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"},
        "installments": None,
        "last4": card["last4"],
        "mandate": None,
        "multicapture": {"status": "unavailable"},
        "network": card["brand"],
        "network_token": {"used": False},
        "network_transaction_id": random_token(15) if succeeded else None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": "unregulated",
        "three_d_secure": three_d_secure,
        "transaction_link_id": None,
        "wallet": None,
    }


def _outcome(decline: Decline | None) -> Obj:
    if decline is None:
        return {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    return {
        "advice_code": "try_again_later" if decline.code == "processing_error" else None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "declined_by_network",
        "reason": decline.decline_code,
        "risk_level": "normal",
        "risk_score": 32,
        "seller_message": decline.seller_message,
        "type": "issuer_declined",
    }


def charge(
    *,
    pi: Obj,
    pm: Obj,
    created: int,
    decline: Decline | None,
    balance_transaction: str | None,
    three_d_secure: Obj | None,
    base_url: str,
) -> Obj:
    ch_id = new_id("ch")
    succeeded = decline is None
    amount = pi["amount"]
    cvc_check: str | None = None
    if pm["type"] == "us_bank_account":
        bank = pm["us_bank_account"]
        method_details: Obj = {
            "type": "us_bank_account",
            "us_bank_account": {
                "account_holder_type": bank["account_holder_type"],
                "account_type": bank["account_type"],
                "bank_name": bank["bank_name"],
                "fingerprint": bank["fingerprint"],
                "last4": bank["last4"],
                "mandate": new_id("mandate"),
                "payment_reference": None,
                "routing_number": bank["routing_number"],
            },
        }
    elif pm["type"] == "sepa_debit":
        sepa = pm["sepa_debit"]
        method_details = {
            "sepa_debit": {
                "bank_code": sepa["bank_code"],
                "branch_code": sepa["branch_code"],
                "country": sepa["country"],
                "fingerprint": sepa["fingerprint"],
                "last4": sepa["last4"],
                "mandate": new_id("mandate"),
            },
            "type": "sepa_debit",
        }
    else:
        if decline is not None and decline.code == "incorrect_cvc":
            cvc_check = "fail"
        elif pm["card"]["checks"]["cvc_check"] is not None:
            cvc_check = "pass"
        method_details = {
            "card": _card_details_on_charge(
                pm,
                amount,
                succeeded=succeeded,
                cvc_check=cvc_check,
                three_d_secure=three_d_secure,
            ),
            "type": "card",
        }
    return {
        "id": ch_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "authorization_code": None,
        "balance_transaction": balance_transaction,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": "TOKENBANK SIM",
        "captured": succeeded,
        "created": created,
        "currency": pi["currency"],
        "customer": None,
        "description": pi["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(pi["metadata"]),
        "on_behalf_of": None,
        "outcome": _outcome(decline),
        "paid": succeeded,
        "payment_intent": pi["id"],
        "payment_method": pm["id"],
        "payment_method_details": method_details,
        "radar_options": {},
        "receipt_email": pi["receipt_email"],
        "receipt_number": None,
        "receipt_url": f"{base_url}/_sim/receipts/{ch_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }


def stripe_fee(amount: int) -> int:
    """Stripe's standard card pricing (2.9% + 30), so net amounts look real."""
    return round(amount * 0.029) + 30


def balance_transaction(
    *,
    amount: int,
    fee: int,
    currency: str,
    created: int,
    source: str,
    txn_type: str,
    reporting_category: str,
    description: str | None,
    fee_description: str = "Stripe processing fees",
) -> Obj:
    fee_details = []
    if fee:
        fee_details.append(
            {
                "amount": fee,
                "application": None,
                "currency": currency,
                "description": fee_description,
                "type": "stripe_fee",
            }
        )
    return {
        "id": new_id("txn"),
        "object": "balance_transaction",
        "amount": amount,
        "available_on": created + 2 * 86400,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": None,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": "pending",
        "type": txn_type,
    }


def charge_balance_transaction(charge_obj: Obj, created: int) -> Obj:
    """The balance transaction of a succeeded charge: its amount less Stripe's fee."""
    return balance_transaction(
        amount=charge_obj["amount"],
        fee=stripe_fee(charge_obj["amount"]),
        currency=charge_obj["currency"],
        created=created,
        source=charge_obj["id"],
        txn_type="charge",
        reporting_category="charge",
        description=charge_obj["description"],
    )


def refund(
    *,
    charge_obj: Obj,
    amount: int,
    created: int,
    reason: str | None,
    metadata: dict[str, str],
    balance_transaction: str,
    status: str = "succeeded",
    pending_reason: str | None = None,
) -> Obj:
    return {
        "id": new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": balance_transaction,
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "customer": None,
        "customer_account": None,
        "description": None,
        "destination_details": {
            "card": {
                "reference": random_token(23),
                "reference_status": "available",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": charge_obj["payment_intent"],
        "payment_method": charge_obj["payment_method"],
        "pending_reason": pending_reason,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


_EVIDENCE_FIELDS = (
    "access_activity_log billing_address cancellation_policy cancellation_policy_disclosure "
    "cancellation_rebuttal customer_communication customer_email_address customer_name "
    "customer_purchase_ip customer_signature duplicate_charge_documentation "
    "duplicate_charge_explanation duplicate_charge_id product_description receipt "
    "refund_policy refund_policy_disclosure refund_refusal_explanation service_date "
    "service_documentation shipping_address shipping_carrier shipping_date "
    "shipping_documentation shipping_tracking_number uncategorized_file uncategorized_text"
).split()
EVIDENCE_FIELDS = frozenset(_EVIDENCE_FIELDS)


def dispute(
    *,
    charge_obj: Obj,
    created: int,
    amount: int,
    reason: str,
    network_reason_code: str,
    case_type: str,
    status: str,
) -> Obj:
    card = charge_obj["payment_method_details"].get("card")
    method_details: Obj = {"type": charge_obj["payment_method_details"]["type"]}
    if card is not None:
        method_details["card"] = {
            "brand": card["brand"],
            "case_type": case_type,
            "network": card["network"],
            "network_reason_code": network_reason_code,
        }
    return {
        "id": new_id("dp"),
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_obj["id"],
        "created": created,
        "currency": charge_obj["currency"],
        "enhanced_eligibility_types": [],
        "evidence": {**{name: None for name in _EVIDENCE_FIELDS}, "enhanced_evidence": {}},
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "network_reason_code": network_reason_code,
        "payment_intent": charge_obj["payment_intent"],
        "payment_method_details": method_details,
        "reason": reason,
        "status": status,
    }


def early_fraud_warning(*, charge_obj: Obj, created: int) -> Obj:
    return {
        "id": new_id("issfr"),
        "object": "radar.early_fraud_warning",
        "actionable": True,
        "charge": charge_obj["id"],
        "created": created,
        "fraud_type": "made_with_stolen_card",
        "livemode": False,
        "payment_intent": charge_obj["payment_intent"],
    }


def event(
    *,
    event_type: str,
    snapshot: Obj,
    created: int,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: Obj | None,
) -> Obj:
    data: Obj = {"object": snapshot}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": new_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }


def json_copy(value: Any) -> Any:
    """A deep copy of a JSON-shaped value (what every object here is: dicts, lists and
    scalars), for the answers and snapshots that must not share the stored objects.

    ``copy.deepcopy`` does the same for any Python value, and keeps a memo of every
    object it visits; the simulator runs on the app's cores, and an answer with its
    expansions copied that way cost it about three times as much CPU."""
    kind = type(value)
    if kind is dict:
        return {k: json_copy(v) for k, v in value.items()}
    if kind is list:
        return [json_copy(v) for v in value]
    if kind is tuple:
        return tuple(json_copy(v) for v in value)
    return value  # str, int, float, bool, None: immutable


def list_object(data: list[Obj], url: str, has_more: bool = False) -> Obj:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def customer(
    *,
    created: int,
    email: str | None,
    name: str | None,
    description: str | None,
    phone: str | None,
    metadata: dict[str, str],
    test_clock: str | None,
) -> Obj:
    """A Customer, fields as in Stripe's ``customer`` fixture (API 2026-10-28)."""
    return {
        "id": new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "business_name": None,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": description,
        "discount": None,
        "email": email,
        "individual_name": None,
        "invoice_prefix": random_token(8).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": phone,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": test_clock,
    }


def setup_intent(
    *,
    created: int,
    customer: str | None,
    description: str | None,
    metadata: dict[str, str],
    usage: str,
    payment_method_types: list[str] | None,
    automatic_payment_methods: Obj | None,
) -> Obj:
    seti_id = new_id("seti")
    return {
        "id": seti_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": automatic_payment_methods,
        "cancellation_reason": None,
        "client_secret": new_secret(seti_id),
        "created": created,
        "customer": customer,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "flow_directions": None,
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": (
            {"id": new_id("pmc"), "parent": None} if automatic_payment_methods else None
        ),
        "payment_method_options": {
            "card": {
                "mandate_options": None,
                "network": None,
                "request_three_d_secure": "automatic",
            }
        },
        "payment_method_types": payment_method_types or ["card"],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": usage,
    }


def deleted(obj: Obj) -> Obj:
    return {"id": obj["id"], "object": obj["object"], "deleted": True}
