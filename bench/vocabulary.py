"""What the generated files talk about: the whitelist, billing codes, NPIs, names.

Public names are used by ``generate.py``; nothing here writes JSON. The NPI check digit rule
is the one of the tests' synthetic generator (tests/support/synth.py).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, for tests.support

from tests.support.synth import complete_npi  # noqa: E402

# The benchmark whitelist: common "shoppable" services. Items carry them in their own
# billing_code (these match) and inside bundled_codes / covered_services (these must not).
WHITELIST: tuple[str, ...] = (
    # CPT
    "99203", "99204", "99213", "99214", "99215", "99285", "99395", "27447", "27130", "29881",
    "45378", "43239", "66984", "70553", "72148", "73721", "74177", "77067", "80053", "80061",
    "85025", "93000", "93306", "97110", "97140", "59400", "59510", "19120", "47562", "49505",
    "64483", "76700", "76805", "81002", "84443", "36415", "90834", "90837", "92014", "20610",
    # HCPCS
    "J1885", "J3301", "G0121", "G0105", "J0696", "Q4101",
    # revenue codes and MS-DRGs
    "0450", "0981", "470", "871",
)  # fmt: skip

DESCRIPTIONS = (
    "Office or other outpatient visit for the evaluation and management of a patient",
    "Arthroplasty, knee, condyle and plateau; medial and lateral compartments",
    "Magnetic resonance imaging, brain, without contrast material, followed by contrast",
    "Colonoscopy, flexible; diagnostic, including collection of specimens",
    "Electrocardiogram, routine ECG with at least 12 leads; with interpretation and report",
    "Comprehensive metabolic panel",
    "Therapeutic procedure, 1 or more areas, each 15 minutes; therapeutic exercises",
    "Injection, ketorolac tromethamine, per 15 mg",
    "Emergency room, general classification",
    "Major hip and knee joint replacement or reattachment of lower extremity without MCC",
    "Computed tomography, abdomen and pelvis; with contrast material(s)",
    "Screening mammography, bilateral (2-view study of each breast)",
    "Psychotherapy, 60 minutes with patient",
    "Ultrasound, abdominal, real time with image documentation; complete",
    "Septicemia or severe sepsis without MV >96 hours with MCC",
)
BUSINESS = (
    "Midland Medical Group", "Riverside Physicians LLC", "Summit Orthopedics PC",
    "Lakeview Family Practice", "Northgate Imaging Center", "Harbor Cardiology Associates",
    "Valley Surgical Partners", "Pinecrest Pediatrics", "Metro Behavioral Health",
    "Crescent Anesthesia Group", "Oak Hill Internal Medicine", "Bayside Radiology Inc",
    "Granite State Physical Therapy", "Cedar Valley Hospital", "St. Anne Regional Medical Center",
)  # fmt: skip
NETWORKS = ("Synthetic Choice PPO", "Synthetic Select HMO", "Synthetic EPO Plus")
PLACES_OF_SERVICE = (
    "02",
    "10",
    "11",
    "12",
    "19",
    "20",
    "21",
    "22",
    "23",
    "24",
    "31",
    "49",
    "81",
    "99",
)
MODIFIERS = (["26"], ["TC"], ["59"], ["RT"], ["LT"], ["50"], ["59", "RT"], ["26", "GC"])
NEGOTIATED_TYPES = (
    ("negotiated", 80),
    ("fee schedule", 10),
    ("percentage", 4),
    ("derived", 3),
    ("per diem", 3),
)


def npi_pool(rng: random.Random, size: int) -> list[str]:
    """Ten-digit NPIs starting with 1 or 2, with a valid Luhn check digit (prefix 80840)."""
    return [complete_npi(f"{rng.choice('12')}{rng.randrange(10**8):08d}") for _ in range(size)]


def other_code(rng: random.Random, excluded: set[str]) -> tuple[str, str, str]:
    """(type, version, code) of a billing code outside `excluded`."""
    while True:
        r = rng.random()
        if r < 0.80:
            kind, version, code = "CPT", "2024", f"{rng.randrange(10000, 99500)}"
        elif r < 0.90:
            letter = rng.choice("ABCEGHJKLQV")
            kind, version, code = "HCPCS", "2024", f"{letter}{rng.randrange(10000):04d}"
        elif r < 0.95:
            kind, version, code = "RC", "2024", f"0{rng.randrange(100, 1000)}"
        else:
            kind, version, code = "MS-DRG", "41", f"{rng.randrange(1, 1000):03d}"
        if code not in excluded:
            return kind, version, code


def whitelist_code(code: str) -> tuple[str, str]:
    """(type, version) of a whitelist code."""
    if code[0].isalpha():
        return "HCPCS", "2024"
    if len(code) == 4:
        return "RC", "2024"
    if len(code) == 3:
        return "MS-DRG", "41"
    return "CPT", "2024"


def weighted(pairs: tuple[tuple[str, int], ...]) -> list[str]:
    """Each name repeated by its weight, for rng.choice."""
    return [name for name, weight in pairs for _ in range(weight)]
