"""Writes in-network.json: an in-network-rates file of 80 KiB whose second half repeats its
first 40 KiB of items, 40 KiB back: farther than deflate's 32 KiB window reaches, within
Deflate64's 64 KiB. The items' descriptions are seeded random letters, so nothing nearer
repeats them. Run from this folder: `python make_json.py`."""

import json
import random

rng = random.Random(17)
codes = ["99213", "27447", "70450", "80053", "99214"]
items = []
size = 0
while size < 40 << 10:
    n = len(items)
    item = {
        "negotiation_arrangement": "ffs",
        "name": f"Service {n}",
        "billing_code_type": "CPT",
        "billing_code_type_version": "2024",
        "billing_code": codes[n % len(codes)],
        "description": "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(300)),
        "negotiated_rates": [
            {
                "provider_references": [1 + n % 2],
                "negotiated_prices": [
                    {
                        "negotiated_type": "negotiated",
                        "negotiated_rate": round(rng.uniform(20, 900), 2),
                        "expiration_date": "2025-12-31",
                        "service_code": ["11"],
                        "billing_class": "professional",
                    }
                ],
            }
        ],
    }
    items.append(item)
    size += len(json.dumps(item))
document = {
    "reporting_entity_name": "Deflate64 Test Plan",
    "reporting_entity_type": "health insurance issuer",
    "plan_name": "Test PPO",
    "plan_id_type": "hios",
    "plan_id": "12345",
    "plan_market_type": "group",
    "last_updated_on": "2024-05-01",
    "version": "1.0.0",
    "provider_references": [
        {
            "provider_group_id": 1,
            "provider_groups": [
                {"npi": [1111111111], "tin": {"type": "ein", "value": "11-1111111"}}
            ],
        },
        {
            "provider_group_id": 2,
            "provider_groups": [
                {"npi": [2222222222, 3333333333], "tin": {"type": "ein", "value": "22-2222222"}}
            ],
        },
    ],
    "in_network": items + items,
}
with open("in-network.json", "w") as f:
    json.dump(document, f)
