"""Small tables of contents for the tests of mrfbatch.sources (the index source among them), and the
plans they list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

GOLD = {"plan_name": "Gold PPO", "plan_id": "111", "plan_id_type": "hios"}
SILVER = {"plan_name": "Silver HMO", "plan_id": "222", "plan_id_type": "hios"}


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# The header toc() writes unless told otherwise.
ACME = {
    "reporting_entity_name": "Acme Health",
    "reporting_entity_type": "health insurance issuer",
    "last_updated_on": "2024-05-01",
    "version": "1.0.0",
}


def toc(*structures: dict[str, Any], header: dict[str, Any] = ACME, last: bool = False) -> bytes:
    """A table of contents with the top-level keys `header`; `last` puts them after
    reporting_structure."""
    document: dict[str, Any] = {} if last else dict(header)
    document["reporting_structure"] = list(structures)
    if last:
        document.update(header)
    return json.dumps(document, indent=2).encode()


def structure(
    plans: list[dict[str, Any]],
    *locations: Any,
    allowed: bool = True,
    description: Any = "in-network file",
) -> dict[str, Any]:
    """A reporting structure listing `locations`, each with `description` (None: no such key)."""
    described = {} if description is None else {"description": description}
    item: dict[str, Any] = {
        "reporting_plans": plans,
        "in_network_files": [{**described, "location": loc} for loc in locations],
    }
    if allowed:
        item["allowed_amount_file"] = {
            "description": "allowed amounts",
            "location": "https://files.example/allowed-amounts.json",
        }
    return item
