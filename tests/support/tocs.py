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


def toc(
    *structures: dict[str, Any], entity: str | None = "Acme Health", last: bool = False
) -> bytes:
    """A table of contents; `last` puts reporting_entity_name after reporting_structure."""
    document: dict[str, Any] = {}
    if entity is not None and not last:
        document["reporting_entity_name"] = entity
    document["reporting_entity_type"] = "health insurance issuer"
    document["reporting_structure"] = list(structures)
    if entity is not None and last:
        document["reporting_entity_name"] = entity
    document["version"] = "1.0.0"
    return json.dumps(document, indent=2).encode()


def structure(plans: list[dict[str, Any]], *locations: Any, allowed: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "reporting_plans": plans,
        "in_network_files": [
            {"description": "in-network file", "location": loc} for loc in locations
        ],
    }
    if allowed:
        item["allowed_amount_file"] = {
            "description": "allowed amounts",
            "location": "https://files.example/allowed-amounts.json",
        }
    return item
