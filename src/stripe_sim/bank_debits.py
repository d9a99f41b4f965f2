"""Bank debits (SEPA Direct Debit, ACH Direct Debit): ``processing`` first, settled later.

Stripe's test IBANs and PaymentMethods (SEPA Direct Debit docs, "Test IBANs"; the DE
and AT ones are simulated):

===========================  ======================  ==================================
IBAN                         PaymentMethod           outcome
===========================  ======================  ==================================
DE89370400440532013000       ``pm_success_de``       processing → succeeded
DE08370400440532013003       ``pm_successDelayed_de``  processing → succeeded, later
DE62370400440532013001       ``pm_failed_de``        processing → requires_payment_method
DE78370400440532013004       ``pm_failedDelayed_de`` processing → requires_payment_method,
                                                     later
DE65370400440002222227       ``pm_insufficientFunds_de``  fails with ``insufficient_funds``
AT611904300234573201 ...     ``pm_success_at`` ...   the same for Austria
===========================  ======================  ==================================

ACH Direct Debit (``us_bank_account``; ACH docs, "Test account numbers"; routing
number 110000000), through Stripe's test PaymentMethods:

==============  =====================================  ===========================
account         PaymentMethod                          outcome (failure code)
==============  =====================================  ===========================
000123456789    ``pm_usBankAccount_success``           succeeds
000111111113    ``pm_usBankAccount_accountClosed``     fails (``account_closed``)
000111111116    ``pm_usBankAccount_noAccount``         fails (``no_account``)
000222222227    ``pm_usBankAccount_insufficientFunds``  fails (``insufficient_funds``)
000333333335    ``pm_usBankAccount_debitNotAuthorized``  fails (``debit_not_authorized``)
000444444440    ``pm_usBankAccount_invalidCurrency``   fails (``invalid_currency``)
==============  =====================================  ===========================

On confirm the PaymentIntent becomes ``processing`` and its charge ``pending``
(events ``charge.pending``, ``payment_intent.processing``). After
``async_delay_s`` (three times that for the "delayed" IBANs, which Stripe says take
"at least three minutes") the charge succeeds (``charge.succeeded``,
``payment_intent.succeeded``, a balance transaction) or fails (``charge.failed``,
``payment_intent.payment_failed``, the intent back to ``requires_payment_method``
with ``last_payment_error``).
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass

from . import charges, invoices, objects
from .errors import ParameterInvalid
from .objects import Obj
from .state import RequestContext, SimState


@dataclass(frozen=True)
class DebitOutcome:
    iban: str  # the account: an IBAN, or a US account number
    succeeds: bool
    delayed: bool = False
    failure_code: str | None = None
    method: str = "sepa_debit"
    currency: str = "eur"


def _ach(account: str, failure_code: str | None = None) -> DebitOutcome:
    return DebitOutcome(
        account,
        failure_code is None,
        failure_code=failure_code,
        method="us_bank_account",
        currency="usd",
    )


def _country(suffix: str, ibans: list[str]) -> dict[str, DebitOutcome]:
    success, delayed, failed, failed_delayed, insufficient = ibans
    table = {
        f"pm_success_{suffix}": DebitOutcome(success, True),
        f"pm_successDelayed_{suffix}": DebitOutcome(delayed, True, delayed=True),
        f"pm_failed_{suffix}": DebitOutcome(
            failed, False, failure_code="generic_could_not_process"
        ),
        f"pm_failedDelayed_{suffix}": DebitOutcome(
            failed_delayed, False, delayed=True, failure_code="generic_could_not_process"
        ),
        f"pm_insufficientFunds_{suffix}": DebitOutcome(
            insufficient, False, failure_code="insufficient_funds"
        ),
    }
    return table


TEST_PAYMENT_METHODS: dict[str, DebitOutcome] = {
    **_country(
        "de",
        [
            "DE89370400440532013000",
            "DE08370400440532013003",
            "DE62370400440532013001",
            "DE78370400440532013004",
            "DE65370400440002222227",
        ],
    ),
    **_country(
        "at",
        [
            "AT611904300234573201",
            "AT321904300235473204",
            "AT861904300235473202",
            "AT051904300235473205",
            "AT981904300002222227",
        ],
    ),
    "pm_usBankAccount_success": _ach("000123456789"),
    "pm_usBankAccount_accountClosed": _ach("000111111113", "account_closed"),
    "pm_usBankAccount_noAccount": _ach("000111111116", "no_account"),
    "pm_usBankAccount_insufficientFunds": _ach("000222222227", "insufficient_funds"),
    "pm_usBankAccount_debitNotAuthorized": _ach("000333333335", "debit_not_authorized"),
    "pm_usBankAccount_invalidCurrency": _ach("000444444440", "invalid_currency"),
}
TEST_IBANS: dict[str, DebitOutcome] = {
    t.iban: t for t in TEST_PAYMENT_METHODS.values() if t.method == "sepa_debit"
}
OUTCOMES: dict[str, DebitOutcome] = {t.iban: t for t in TEST_PAYMENT_METHODS.values()}
ACH_ROUTING_NUMBER = "110000000"
FAILURE_MESSAGES = {
    "generic_could_not_process": "The payment could not be processed.",
    "insufficient_funds": "The customer's account has insufficient funds to cover this payment.",
    "account_closed": "The customer's bank account has been closed.",
    "no_account": "The customer's bank account could not be located.",
    "debit_not_authorized": "The customer has notified their bank that this payment was "
    "unauthorized.",
    "invalid_currency": "The bank was unable to process this payment because of its currency.",
}


def normalized_iban(raw: str) -> str:
    """Check an IBAN as Stripe does (format and mod-97 checksum); raise otherwise."""
    iban = raw.replace(" ", "").upper()
    valid = (
        15 <= len(iban) <= 34
        and iban[:2].isalpha()
        and iban[2:4].isdigit()
        and all(c in string.ascii_uppercase + string.digits for c in iban)
    )
    if valid:
        digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
        valid = int(digits) % 97 == 1
    if not valid:
        raise ParameterInvalid(
            "The IBAN you provided appears to be invalid.",
            "sepa_debit[iban]",
            code="invalid_bank_account_iban",
        )
    if iban not in TEST_IBANS:
        raise ParameterInvalid(
            "Your request was in test mode, but used a non test IBAN. Use one of Stripe's "
            "test IBANs (https://docs.stripe.com/payments/sepa-debit#test-integration).",
            "sepa_debit[iban]",
            code="invalid_bank_account_iban",
        )
    return iban


def start(state: SimState, pi: Obj, pm: Obj, ctx: RequestContext) -> Obj:
    """Confirmed with a SEPA debit: the charge is pending, the intent processing."""
    iban = OUTCOMES[state.card_numbers[pm["id"]]]
    charge = charges.record(state, pi, pm, ctx)
    charge.update(status="pending", paid=False)
    pi.update(
        status="processing",
        payment_method=pm["id"],
        latest_charge=charge["id"],
        next_action=None,
        last_payment_error=None,
    )
    state.emit("charge.pending", charge, ctx)
    state.emit("payment_intent.processing", pi, ctx)
    delay = state.async_delay_s * (3 if iban.delayed else 1)
    pi_id, charge_id = pi["id"], charge["id"]
    state.later.schedule(
        delay, "bank debit settles", pi_id, lambda: _settle(state, pi_id, charge_id, iban)
    )
    return pi


def _settle(state: SimState, pi_id: str, charge_id: str, iban: DebitOutcome) -> None:
    pi = state.store.payment_intents.find(pi_id)
    charge = state.store.charges.find(charge_id)
    if pi is None or charge is None or pi["status"] != "processing":
        return
    if iban.succeeds:
        txn = objects.charge_balance_transaction(charge, state.now())
        state.store.balance_transactions.add(txn)
        charge.update(status="succeeded", paid=True, balance_transaction=txn["id"])
        pi.update(status="succeeded", amount_received=pi["amount"])
        state.emit("charge.succeeded", charge, None, previous_attributes={"status": "pending"})
        state.emit("payment_intent.succeeded", pi, None)
        invoices.payment_succeeded(state, pi, None)
        return
    code = iban.failure_code or "generic_could_not_process"
    pm = state.store.payment_methods.find(str(charge["payment_method"]))
    charge.update(
        status="failed",
        paid=False,
        amount_captured=0,
        captured=False,
        failure_code=code,
        failure_message=FAILURE_MESSAGES[code],
    )
    pi.update(
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={
            "code": code,
            "message": FAILURE_MESSAGES[code],
            "payment_method": copy.deepcopy(pm),
            "type": "invalid_request_error",
        },
    )
    state.emit("charge.failed", charge, None, previous_attributes={"status": "pending"})
    state.emit("payment_intent.payment_failed", pi, None)
    invoices.payment_failed(state, pi, None)
