"""Prices in one currency so that markets can be compared.

Day-ahead markets quote in their own currency; placement compares them in USD with the
approximate 2023 average exchange rates below (override with ``fx``). Accounts keep the
original currency next to the converted figure.
"""

from __future__ import annotations

from collections.abc import Mapping

USD_PER: dict[str, float] = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.24,
    "CHF": 1.11,
    "SEK": 0.094,
    "NOK": 0.095,
    "DKK": 0.145,
    "PLN": 0.24,
    "CAD": 0.74,
    "AUD": 0.66,
    "JPY": 0.0071,
    "KRW": 0.00077,
    "SGD": 0.74,
    "INR": 0.0121,
    "BRL": 0.20,
    "CLP": 0.0012,
    "ZAR": 0.054,
    "CNY": 0.141,
}


def currency_of(unit: str) -> str:
    """``EUR/MWh`` -> ``EUR``."""
    return unit.split("/", 1)[0].upper()


def to_usd_per_mwh(value: float, unit: str, fx: Mapping[str, float] | None = None) -> float:
    """A price per MWh converted to USD/MWh; raises KeyError for an unknown currency."""
    rates = {**USD_PER, **(fx or {})}
    return value * rates[currency_of(unit)]
