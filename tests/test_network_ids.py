"""Tests of mrfbatch.network_ids against hostile file names: ids that stay one portable folder
name inside output_dir, and never collide.

Every expected id is written by hand. Hex suffixes were computed with `printf '%s' TEXT |
sha256sum`: TEXT is the URL without its query string for a shared name, the URL's path for a
long one.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mrfbatch.errors import UsageError
from mrfbatch.network_ids import (
    MAX_ID_LENGTH,
    assign_network_ids,
    check_network_id,
    derive_network_id,
    network_id_problem,
)

PORTABLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def assert_one_folder_inside(network_id: str, output_dir: Path) -> None:
    assert PORTABLE.fullmatch(network_id), network_id
    assert network_id_problem(network_id) is None, network_id
    folder = (output_dir / network_id).resolve()
    assert folder.parent == output_dir.resolve()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # traversal, in every spelling
        ("https://h.example/../../etc/passwd.json", "passwd"),
        ("https://h.example/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd.json", "passwd"),
        ("https://h.example/files/..%5C..%5Cwindows%5Csystem.ini", "system.ini"),
        ("https://h.example/%2e%2e", "network"),
        ("https://h.example/.", "network"),
        ("https://h.example/..", "network"),
        ("/etc/passwd", "passwd"),
        ("file:///etc/passwd.json", "passwd"),
        ("../../x.json", "x"),
        # nothing at all
        ("https://h.example/", "network"),
        ("https://h.example/?x=1", "network"),
        ("https://h.example", "network"),
        ("https://h.example/files/#frag", "files"),
        ("", "network"),
        # unicode: accents dropped whether composed (NFC) or not (NFD), the rest replaced
        ("https://h.example/caf%C3%A9.json", "cafe"),
        ("https://h.example/cafe%CC%81.json", "cafe"),
        ("https://h.example/café.json", "cafe"),
        ("https://h.example/\uff52\uff41\uff54\uff45\uff53.json", "rates"),  # full-width
        ("https://h.example/%E2%80%AEnosj.exe%E2%80%AC.json", "nosj.exe"),  # right-to-left
        ("https://h.example/\U0001f4b0rates\U0001f4b0.json.gz", "rates"),
        ("https://h.example/%F0%9F%92%B0.json", "network"),
        ("https://h.example/\u65e5\u672c-plan.json", "plan"),
        # control characters, spaces, shell characters
        ("https://h.example/a%00b%1B%5B31mc.json", "a_b_31mc"),
        ("https://h.example/we%20ird%0A%09name$.json.gz", "we_ird_name"),
        ("https://h.example/-rf%20*.json", "rf"),
        ("https://h.example/.hidden.json", "hidden"),
        # names Windows reserves, with or without an extension, and a run's own files
        ("https://h.example/CON.json", "CON_"),
        ("https://h.example/nul.v2.json.gz", "nul_.v2"),
        ("https://h.example/com1.zip", "com1_"),
        ("https://h.example/Lpt9.json", "Lpt9_"),
        ("https://h.example/aux.tar", "aux_.tar"),
        ("https://h.example/tasks.tsv", "tasks_.tsv"),
        ("https://h.example/batch-input.csv", "batch-input_.csv"),
        ("https://h.example/console.json", "console"),
        # the run's log folder, {output_dir}/logs, is no file's output folder
        ("https://h.example/logs.json.gz", "logs_"),
        ("https://h.example/LOGS", "LOGS_"),
    ],
)
def test_derive_network_id_hostile_names_give_one_portable_folder(
    url: str, expected: str, tmp_path: Path
) -> None:
    network_id = derive_network_id(url)
    assert network_id == expected
    assert_one_folder_inside(network_id, tmp_path)
    assert assign_network_ids([url]) == {url: expected}


def test_derive_network_id_cuts_long_names_and_adds_a_hash_of_the_path() -> None:
    head = "a" * 250
    one = f"https://h.example/{head}x{'a' * 49}.json"
    two = f"https://h.example/{head}y{'a' * 49}.json"
    # the same first 191 characters; the hashes of "/aaa...xaaa.json" and "/aaa...yaaa.json"
    assert derive_network_id(one) == "a" * 191 + "-04854377"
    assert derive_network_id(two) == "a" * 191 + "-bb07a78e"
    assert assign_network_ids([one, two]) == {
        one: "a" * 191 + "-04854377",
        two: "a" * 191 + "-bb07a78e",
    }


def test_derive_network_id_exactly_200_characters_is_kept() -> None:
    assert derive_network_id("https://h.example/" + "b" * 200 + ".json") == "b" * 200


def test_assign_network_ids_names_differing_only_in_replaced_characters_stay_apart() -> None:
    urls = [
        "https://h.example/a b.json",
        "https://h.example/a_b.json",
        "https://h.example/a$b.json",
        "https://h.example/a%00b.json",
        "https://h.example/a%E2%80%AEb.json",
    ]
    expected = {
        "https://h.example/a b.json": "a_b-c14c1076",
        "https://h.example/a_b.json": "a_b-f52b013d",
        "https://h.example/a$b.json": "a_b-578095ad",
        "https://h.example/a%00b.json": "a_b-c14cc881",
        "https://h.example/a%E2%80%AEb.json": "a_b-cdf80ddf",
    }
    assert assign_network_ids(urls) == expected
    assert assign_network_ids(reversed(urls)) == expected
    assert assign_network_ids([*urls, *urls]) == expected


@pytest.mark.parametrize(
    "network_id",
    [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "a\\b",
        "/abs",
        ".hidden",
        "-rf",
        "_x",
        "a b",
        "caf\u00e9",
        "a\x00",
        "x\n",
        "CON",
        "con.v2",
        "Lpt1",
        "NUL.json",
        "tasks.tsv",
        "MANIFEST.JSON",
        "progress.json",
        "logs",
        "a" * 240,
    ],
)
def test_check_network_id_rejects_unsafe_ids(network_id: str) -> None:
    assert network_id_problem(network_id) is not None
    with pytest.raises(UsageError, match="is not a safe folder name: it "):
        check_network_id(network_id)


@pytest.mark.parametrize(
    "network_id", ["a", "0", "x-fc29304c", "a" * 239, "con_", "CON_.v2", "2024-01_ppo.v2", "tasks"]
)
def test_check_network_id_accepts_safe_ids(network_id: str) -> None:
    assert network_id_problem(network_id) is None
    check_network_id(network_id)


def test_check_network_id_names_the_problem() -> None:
    with pytest.raises(
        UsageError, match=r"network id '\.\./etc' is not a safe folder name: it must"
    ):
        check_network_id("../etc")
    with pytest.raises(UsageError, match=r"it is a device name Windows reserves"):
        check_network_id("prn")
    with pytest.raises(UsageError, match=r"it is the name of a file a run keeps in output_dir"):
        check_network_id("manifest.json")
    with pytest.raises(UsageError, match=r"it is 300 characters long; at most 239 fit a file name"):
        check_network_id("a" * 300)


# Random names: URL paths and local paths of any characters, several files at once.
names = st.text(
    alphabet=st.one_of(
        st.sampled_from("./\\%?#:@ -_.aAzZ09~$*\t\n\x00\u202e\u0301\u00e9\ufeff"),
        st.characters(codec="utf-8"),
    ),
    max_size=40,
) | st.text(alphabet="ab.", min_size=190, max_size=260)
urls = st.one_of(
    names.map(lambda name: f"https://h.example/{name}"),
    st.tuples(st.sampled_from(["a.example", "b.example"]), names).map(
        lambda pair: f"http://{pair[0]}/files/{pair[1]}.json.gz?Signature=s"
    ),
    names,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(urls, max_size=8), data=st.data())
def test_assign_network_ids_random_names_are_safe_distinct_and_stable(
    batch: list[str], data: st.DataObject, tmp_path: Path
) -> None:
    ids = assign_network_ids(batch)
    assert set(ids) == set(batch)
    for network_id in ids.values():
        assert_one_folder_inside(network_id, tmp_path)
        assert len(network_id) <= MAX_ID_LENGTH
    by_id: dict[str, set[str]] = {}
    for url, network_id in ids.items():
        by_id.setdefault(network_id.lower(), set()).add(file_of(url))
    assert all(len(files) == 1 for files in by_id.values()), by_id  # one file per folder
    shuffled = data.draw(st.permutations(batch))
    assert assign_network_ids(shuffled) == ids


def file_of(url: str) -> str:
    """What identifies a file: a URL without query and fragment (scheme in lower case); a
    plain path (no scheme of two or more characters) as it is."""
    scheme = re.match(r"[A-Za-z][A-Za-z0-9+.-]+:", url)
    if not scheme:
        return url
    rest = re.split(r"[?#]", url[scheme.end() :], maxsplit=1)[0]
    return scheme.group().lower() + rest


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://cdn.example/a/2024-01_BCBS_in-network.json.gz?Signature=x&Expires=1",
            "2024-01_BCBS_in-network",
        ),
        ("https://cdn.example/files/rates.JSON.GZ", "rates"),
        ("https://cdn.example/files/rates.zip", "rates"),
        ("file:///data/x/plan%20a.json", "plan_a"),
        ("/data/x/plan.json", "plan"),
        ("relative/dir/plan.v2.json.gz", "plan.v2"),
        ("https://cdn.example/", "network"),
    ],
)
def test_derive_network_id_uses_file_name(url: str, expected: str) -> None:
    assert derive_network_id(url) == expected
