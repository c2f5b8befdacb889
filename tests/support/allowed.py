"""Generated allowed-amounts files (CMS schema 2.x) and the rows they must give.

`allowed_doc(seed)` builds a document with several items, TINs, payments and provider entries,
billing-code modifiers on some payments, empty arrays (`allowed_amounts`, `payments`,
`providers`, `npi`) and optional fields left out (`setting`, `service_code`,
`billing_code_modifier`, `description`). `expected_rows` is the oracle: it reads the document
as docs/output.md describes the two tables, with nothing from mrfbatch.
"""

from __future__ import annotations

import random
from typing import Any

CODES = ["99213", "99214", "27447", "J1885", "0450"]


def allowed_doc(seed: int, items: int = 6) -> dict[str, Any]:
    """An allowed-amounts file's JSON (as Python values) made from `seed`."""
    rnd = random.Random(seed)
    doc: dict[str, Any] = {
        "reporting_entity_name": f"Payer {seed}",
        "reporting_entity_type": "health insurance issuer",
        "plan_name": "Plan G",
        "plan_id_type": "HIOS",
        "plan_id": "12345NY0010001",
        "plan_market_type": "group",
        "last_updated_on": "2024-11-01",
        "version": "2.0.0",
        "out_of_network": [],
    }
    for i in range(items):
        item: dict[str, Any] = {
            "name": f"service {i}",
            "billing_code_type": "CPT",
            "billing_code_type_version": "2024",
            "billing_code": rnd.choice(CODES),
            "allowed_amounts": [],
        }
        if rnd.random() < 0.7:
            item["description"] = f"description of service {i}"
        for _ in range(rnd.choice([0, 1, 2, 3])):
            amount: dict[str, Any] = {
                "tin": {"type": rnd.choice(["ein", "npi"]), "value": str(rnd.randrange(10**9))},
                "billing_class": rnd.choice(["professional", "institutional"]),
                "payments": [],
            }
            if rnd.random() < 0.6:
                amount["service_code"] = sorted(rnd.sample(["01", "11", "22", "81"], 2))
            if rnd.random() < 0.5:
                amount["setting"] = rnd.choice(["inpatient", "outpatient", "both"])
            for _ in range(rnd.choice([0, 1, 2, 4])):
                payment: dict[str, Any] = {
                    "allowed_amount": rnd.randrange(100, 100_000) / 100,
                    "providers": [],
                }
                if rnd.random() < 0.4:
                    payment["billing_code_modifier"] = rnd.sample(["25", "26", "TC", "59"], 2)
                for _ in range(rnd.choice([0, 1, 3])):
                    npis = [rnd.randrange(10**9, 10**10) for _ in range(rnd.choice([0, 1, 2, 3]))]
                    payment["providers"].append(
                        {"billed_charge": rnd.randrange(100, 200_000) / 100, "npi": npis}
                    )
                amount["payments"].append(payment)
            item["allowed_amounts"].append(amount)
        doc["out_of_network"].append(item)
    return doc


def expected_rows(
    doc: dict[str, Any], network_id: str, whitelist: set[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of allowed_amounts and allowed_amount_providers, in file order."""
    amounts: list[dict[str, Any]] = []
    providers: list[dict[str, Any]] = []
    for i, item in enumerate(doc["out_of_network"]):
        if whitelist is not None and item["billing_code"] not in whitelist:
            continue
        for j, amount in enumerate(item["allowed_amounts"]):
            for k, payment in enumerate(amount["payments"]):
                payment_id = f"{i}.{j}.{k}"
                amounts.append(
                    {
                        "network_id": network_id,
                        "payment_id": payment_id,
                        "billing_code_type": item["billing_code_type"],
                        "billing_code_type_version": item["billing_code_type_version"],
                        "billing_code": item["billing_code"],
                        "name": item["name"],
                        "description": item.get("description"),
                        "tin_type": amount["tin"]["type"],
                        "tin_value": amount["tin"]["value"],
                        "billing_class": amount["billing_class"],
                        "setting": amount.get("setting"),
                        "service_code": amount.get("service_code"),
                        "allowed_amount": payment["allowed_amount"],
                        "billing_code_modifier": payment.get("billing_code_modifier"),
                        "provider_entries": len(payment["providers"]),
                    }
                )
                for e, entry in enumerate(payment["providers"]):
                    for npi in entry["npi"] or [0]:
                        providers.append(
                            {
                                "network_id": network_id,
                                "payment_id": payment_id,
                                "provider_entry": e,
                                "npi": npi,
                                "billed_charge": entry["billed_charge"],
                            }
                        )
    return amounts, providers
