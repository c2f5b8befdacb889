"""Tests of mrfbatch.sources.index, the index source: a CMS table of contents into tasks.

Every expected value is written by hand. Most tests use small tables of contents built inline
by `toc()`; the CMS samples in ../shared/tic-examples are used when that folder is present.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mrfbatch.errors import SourceError, UsageError
from mrfbatch.progress import Snapshot, read_snapshot
from mrfbatch.sources import parse_index, read_index
from mrfbatch.tasks import SkippedEntry, Task
from mrfbatch.transport import TransportSettings
from support.tocs import GOLD, SILVER, structure, toc, write

TIC_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "tic-examples"


@pytest.fixture
def tic_examples() -> Path:
    if not TIC_EXAMPLES.is_dir():
        pytest.skip(
            f"CMS example files not found at {TIC_EXAMPLES} (the shared folder beside the "
            "repository); the inline index tests still run"
        )
    return TIC_EXAMPLES


MEDICAID_V1 = {
    "plan_name": "medicaid",
    "plan_id_type": "hios",
    "plan_id": "1111111111",
    "plan_market_type": "individual",
}
MEDICARE_V1 = {
    "plan_name": "medicare",
    "plan_id_type": "hios",
    "plan_id": "000000000",
    "plan_market_type": "individual",
}
CHIP_V1 = {
    "plan_name": "chip",
    "plan_id_type": "hios",
    "plan_id": "3333333333",
    "plan_market_type": "group",
}
# The header of the CMS samples, and each file's description there.
V1_HEADER = {
    "index_reporting_entity_name": "medicare",
    "index_reporting_entity_type": "medicare",
    "index_version": "1.4.0",
}
V2_HEADER = {
    "index_reporting_entity_name": "medicare",
    "index_reporting_entity_type": "medicare",
    "index_last_updated_on": "2023-04-19",
    "index_version": "2.0.0",
}
# An index's tasks say which kind of file the index lists them as.
IN_NETWORK_KIND = {"file_kind": "in-network"}
BEHAVIORAL = {"file_description": "behavioral in-network shared file", **IN_NETWORK_KIND}
IN_NETWORK = {"file_description": "in-network file", **IN_NETWORK_KIND}
# What toc() writes (support.tocs.ACME), and structure()'s description.
ACME_EXTRA = {
    "index_reporting_entity_name": "Acme Health",
    "index_reporting_entity_type": "health insurance issuer",
    "index_last_updated_on": "2024-05-01",
    "index_version": "1.0.0",
    "file_description": "in-network file",
    "file_kind": "in-network",
}


def test_parse_index_reads_the_cms_v1_sample(tic_examples: Path) -> None:
    tasks = parse_index(tic_examples / "v1" / "table-of-contents-sample.json")
    assert tasks == [
        Task(
            "behavioral-health-0000",
            "https://www.some_site.com/files/behavioral-health-0000.json",
            (MEDICAID_V1, MEDICARE_V1),
            {**V1_HEADER, **BEHAVIORAL},
        ),
        Task(
            "chip-in-network-file",
            "https://www.some_site.com/files/chip-in-network-file.json",
            (CHIP_V1,),
            {**V1_HEADER, **IN_NETWORK},
        ),
        Task(
            "in-network-file-123456",
            "https://www.some_site.com/files/in-network-file-123456.json",
            (MEDICAID_V1, MEDICARE_V1),
            {**V1_HEADER, **IN_NETWORK},
        ),
    ]


def test_parse_index_reads_the_cms_v2_sample(tic_examples: Path) -> None:
    tasks = parse_index(str(tic_examples / "v2" / "table-of-contents-sample.json"))
    cms = {"issuer_name": "CMS"}
    assert [(t.network_id, t.plan_metadata, t.extra_args) for t in tasks] == [
        (
            "behavioral-health-0000",
            ({**MEDICAID_V1, **cms}, {**MEDICARE_V1, **cms}),
            {**V2_HEADER, **BEHAVIORAL},
        ),
        ("chip-in-network-file", ({**CHIP_V1, **cms},), {**V2_HEADER, **IN_NETWORK}),
        (
            "in-network-file-123456",
            ({**MEDICAID_V1, **cms}, {**MEDICARE_V1, **cms}),
            {**V2_HEADER, **IN_NETWORK},
        ),
    ]


def test_parse_index_allowed_amount_files_of_the_cms_v2_sample(tic_examples: Path) -> None:
    path = tic_examples / "v2" / "table-of-contents-sample.json"
    tasks = parse_index(path, file_types="allowed_amounts")
    cms = {"issuer_name": "CMS"}
    allowed = {
        **V2_HEADER,
        "file_description": "allowed amount file",
        "file_kind": "allowed-amounts",
    }
    assert tasks == [
        Task(
            "allowed-amount-file-987665",
            "https://www.some_site.com/files/allowed-amount-file-987665.json",
            ({**MEDICAID_V1, **cms}, {**MEDICARE_V1, **cms}),
            allowed,
        ),
        Task(
            "chip-allowed-amount-file",
            "https://www.some_site.com/files/chip-allowed-amount-file.json",
            ({**CHIP_V1, **cms},),
            allowed,
        ),
    ]
    both = parse_index(path, file_types="both")
    assert [t.network_id for t in both] == [
        "allowed-amount-file-987665",
        "behavioral-health-0000",
        "chip-allowed-amount-file",
        "chip-in-network-file",
        "in-network-file-123456",
    ]


def test_parse_index_rejects_the_cms_in_network_sample(tic_examples: Path) -> None:
    path = tic_examples / "v1" / "in-network-rates-multiple-plans-sample.json"
    with pytest.raises(SourceError, match="looks like an in-network rates file"):
        parse_index(path)


def test_parse_index_merges_plans_of_a_location_shared_by_structures(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(
            structure(
                [GOLD], "https://files.example/shared.json.gz?sig=1", "https://files.example/g.json"
            ),
            structure([SILVER, GOLD], "https://files.example/shared.json.gz?sig=2"),
        ),
    )
    assert parse_index(path) == [
        Task("g", "https://files.example/g.json", (GOLD,), ACME_EXTRA),
        Task("shared", "https://files.example/shared.json.gz?sig=1", (GOLD, SILVER), ACME_EXTRA),
    ]


def test_parse_index_counts_allowed_amount_files_without_tasks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(structure([GOLD], "https://files.example/a.json"), structure([SILVER], allowed=True)),
    )
    with caplog.at_level(logging.INFO, logger="mrfbatch.sources.index"):
        tasks = parse_index(path)
    assert [t.url for t in tasks] == ["https://files.example/a.json"]
    assert (
        "2 reporting structures, 1 in-network file entries, 2 allowed-amount file entries; "
        "file_types in_network: 1 files, 0 entries skipped"
    ) in caplog.text


def test_parse_index_only_allowed_amount_files_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", toc(structure([GOLD])))
    with pytest.raises(SourceError) as caught:
        parse_index(path)
    assert str(caught.value) == (
        f"index {path} lists no in-network files (reporting structures: 1; in-network file "
        "entries: 0; allowed-amount file entries: 1; file_types in_network); file_types "
        "allowed_amounts or both makes tasks of the allowed-amount files"
    )


@pytest.mark.parametrize("last", [False, True], ids=["header-first", "header-last"])
def test_parse_index_puts_the_header_in_extra_args_wherever_it_is(
    tmp_path: Path, last: bool
) -> None:
    path = write(
        tmp_path, "toc.json", toc(structure([GOLD], "https://f.example/a.json"), last=last)
    )
    [task] = parse_index(path)
    assert task.extra_args == {
        "index_reporting_entity_name": "Acme Health",
        "index_reporting_entity_type": "health insurance issuer",
        "index_last_updated_on": "2024-05-01",
        "index_version": "1.0.0",
        "file_description": "in-network file",
        "file_kind": "in-network",
    }


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(
            '"version": 1.10, "last_updated_on": 20240501',
            {"index_version": "1.10", "index_last_updated_on": "20240501"},
            id="numbers-as-their-text",
        ),
        pytest.param(
            '"version": null, "last_updated_on": {"date": "2024-05-01"}, '
            '"reporting_entity_name": ["Acme"], "reporting_entity_type": true',
            {},
            id="null-object-array-boolean-ignored",
        ),
        pytest.param(
            '"reporting_entity_name": 42, "reporting_entity_type": 1.5, "version": false',
            {},
            id="entity-numbers-ignored",
        ),
        pytest.param(
            '"version": [1, 0], "last_updated_on": "2024-05-01", "reporting_entity_name": ""',
            {"index_last_updated_on": "2024-05-01", "index_reporting_entity_name": ""},
            id="strings-kept-as-given",
        ),
    ],
)
def test_parse_index_header_values_that_are_not_strings(
    tmp_path: Path, header: str, expected: dict[str, str]
) -> None:
    text = (
        "{" + header + ', "reporting_structure": [{"reporting_plans": [], '
        '"in_network_files": [{"location": "https://f.example/a.json"}]}]}'
    )
    [task] = parse_index(write(tmp_path, "toc.json", text))
    assert task.extra_args == {**expected, **IN_NETWORK_KIND}


def test_parse_index_joins_the_distinct_descriptions_of_a_file(tmp_path: Path) -> None:
    """Descriptions of one file over several structures, and over URLs that differ only in
    the query string (one task), are kept once each in the order they come in the index."""
    shared = "https://files.example/shared.json.gz"
    item = structure([GOLD], f"{shared}?sig=1", "https://files.example/other.json")
    item["in_network_files"][1]["description"] = "Other PPO rates"
    path = write(
        tmp_path,
        "toc.json",
        toc(
            item,  # shared: "in-network file"
            structure([SILVER], f"{shared}?sig=2", description="  HMO rates "),
            structure([GOLD], f"{shared}?sig=1", description="PPO tier 1"),
            structure([SILVER], f"{shared}?sig=2", description="in-network file"),
            structure([GOLD], f"{shared}?sig=1", description=""),
            structure([GOLD], f"{shared}?sig=3", description=None),
            structure([GOLD], f"{shared}?sig=3", description=7),
            header={},
        ),
    )
    assert parse_index(path) == [
        Task(
            "other",
            "https://files.example/other.json",
            (GOLD,),
            {"file_description": "Other PPO rates", **IN_NETWORK_KIND},
        ),
        Task(
            "shared",
            f"{shared}?sig=1",
            (GOLD, SILVER),
            {"file_description": "in-network file | HMO rates | PPO tier 1", **IN_NETWORK_KIND},
        ),
    ]


def test_parse_index_without_header_or_descriptions_has_only_the_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(structure([GOLD], "https://f.example/a.json", description=None), header={}),
    )
    assert parse_index(path) == [Task("a", "https://f.example/a.json", (GOLD,), IN_NETWORK_KIND)]


def test_parse_index_without_header_keeps_the_description(tmp_path: Path) -> None:
    path = write(
        tmp_path, "toc.json", toc(structure([GOLD], "https://f.example/a.json"), header={})
    )
    [task] = parse_index(path)
    assert task.extra_args == IN_NETWORK


def test_parse_index_keeps_numbers_as_json_numbers(tmp_path: Path) -> None:
    plan = {"plan_name": "Gold", "plan_id": 1234567890123, "weight": 1.5}
    path = write(tmp_path, "toc.json", toc(structure([plan], "https://f.example/a.json")))
    [task] = parse_index(path)
    assert task.plan_metadata == ({"plan_name": "Gold", "plan_id": 1234567890123, "weight": 1.5},)


def test_parse_index_gzipped_over_http(http_server: Any) -> None:
    data = gzip.compress(toc(structure([GOLD], "https://files.example/a.json.gz?sig=x")))
    url = http_server.add("/toc/2024-01_index.json.gz", data)
    tasks = parse_index(url + "?Signature=secret")
    assert tasks == [
        Task(
            "a",
            "https://files.example/a.json.gz?sig=x",
            (GOLD,),
            ACME_EXTRA,
        )
    ]
    assert http_server.route("/toc/2024-01_index.json.gz").requests == [
        "/toc/2024-01_index.json.gz?Signature=secret"
    ]


def test_parse_index_zipped_local_file(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", "not json")
        archive.writestr("index.json", toc(structure([SILVER], "https://f.example/s.json")))
    path = write(tmp_path, "index.bin", buffer.getvalue())
    assert [(t.network_id, t.plan_metadata) for t in parse_index(path)] == [("s", (SILVER,))]


INDEX_SETTINGS = TransportSettings(read_timeout=2.0, backoff_seconds=0.01, restarts=2)


def test_parse_index_read_again_when_it_changes_mid_transfer(http_server: Any) -> None:
    """The transfer breaks, and the index has changed since (new ETag): it is read again from
    the start, never joined from two versions."""
    old = toc(*(structure([GOLD], f"https://f.example/old{i}.json") for i in range(40)))
    new = toc(*(structure([GOLD], f"https://f.example/new{i}.json") for i in range(40)))
    url = http_server.add(
        "/toc/index.json",
        old,
        etag='"v1"',
        ranges=True,
        drop_at=[len(old) // 2, len(old) // 2 + 10, len(old) // 2 + 20],
        replace_after=1,
        replacement=new,
        replacement_etag='"v2"',
    )
    tasks = parse_index(url, INDEX_SETTINGS)
    assert sorted(t.network_id for t in tasks) == sorted(f"new{i}" for i in range(40))
    statuses = http_server.route("/toc/index.json").statuses
    assert statuses[:2] == [200, 200] and 206 in statuses  # If-Range failed, then resumed


def test_parse_index_that_cannot_be_resumed_is_given_up_after_restarts(http_server: Any) -> None:
    """Every read breaks and the server ignores Range: read again twice, then a SourceError."""
    data = toc(*(structure([GOLD], f"https://f.example/f{i}.json") for i in range(40)))
    drops = [1000, 1500, 2000, 2500, 3000, 3500]  # (each resume's answer ends at one too)
    url = http_server.add("/toc/index.json", data, etag='"v1"', ranges=False, drop_at=drops)
    with pytest.raises(SourceError, match="cannot read the index: gave up after 2 restarts"):
        parse_index(url, INDEX_SETTINGS)


def test_parse_index_http_404_is_a_source_error(http_server: Any) -> None:
    url = http_server.add("/toc/gone.json", b"", status=404)
    with pytest.raises(SourceError, match=r"cannot read the index: HTTP 404 .*/toc/gone\.json"):
        parse_index(url)


def test_parse_index_truncated_gzip_is_a_source_error(tmp_path: Path) -> None:
    data = gzip.compress(toc(structure([GOLD], "https://f.example/a.json")))
    path = write(tmp_path, "toc.json.gz", data[: len(data) // 2])
    with pytest.raises(SourceError, match="cannot read the index: gzip stream .* ends early"):
        parse_index(path)


def test_parse_index_in_network_file_is_a_source_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "rates.json",
        json.dumps({"reporting_entity_name": "Acme", "version": "1.0.0", "in_network": []}),
    )
    with pytest.raises(
        SourceError,
        match=r"not a table of contents: it looks like an in-network rates file "
        r"\(top-level key 'in_network'\); give a file to extract as source 'url' or 'urls'",
    ):
        parse_index(path)


def test_parse_index_allowed_amounts_file_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "aa.json", json.dumps({"out_of_network": []}))
    with pytest.raises(SourceError, match="it looks like an allowed-amounts file"):
        parse_index(path)


def test_parse_index_object_without_structures_lists_its_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "other.json", json.dumps({"name": "x", "items": [1, 2]}))
    with pytest.raises(
        SourceError, match=r"no reporting_structure array \(top-level keys: 'name', 'items'\)"
    ):
        parse_index(path)


def test_parse_index_top_level_array_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "list.json", "[]")
    with pytest.raises(SourceError, match="its top level is an array"):
        parse_index(path)


def test_parse_index_structure_that_is_not_an_array_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", json.dumps({"reporting_structure": {}}))
    with pytest.raises(SourceError, match="reporting_structure is an object; expected an array"):
        parse_index(path)


def test_parse_index_invalid_json_names_the_byte_offset(tmp_path: Path) -> None:
    # byte 25 is the "}" that cannot follow "[" (bytes 0-24: {"reporting_structure": [)
    path = write(tmp_path, "toc.json", '{"reporting_structure": [}')
    with pytest.raises(SourceError, match=r"invalid JSON in .*toc\.json at decoded byte 25"):
        parse_index(path)


def test_parse_index_trailing_garbage_is_a_source_error(tmp_path: Path) -> None:
    # bytes 0-26 are the object, 27 a space, 28 the "x" that may not follow it
    path = write(tmp_path, "toc.json", '{"reporting_structure": []} x')
    with pytest.raises(SourceError, match=r"at decoded byte 28: parse error: trailing garbage"):
        parse_index(path)


def test_parse_index_truncated_json_is_a_source_error(tmp_path: Path) -> None:
    data = toc(structure([GOLD], "https://f.example/a.json"))
    path = write(tmp_path, "toc.json", data[:-10])
    with pytest.raises(
        SourceError, match=r"JSON of .*toc\.json ends early after \d+ decoded bytes"
    ):
        parse_index(path)


def test_read_index_skips_locations_that_are_not_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(
            structure([GOLD], "https://f.example/a.json"),
            structure([SILVER], "https://f.example/b.json", None),
            structure([SILVER], 42),
        ),
    )
    found = read_index(path)
    assert [(t.network_id, t.plan_metadata) for t in found.tasks] == [
        ("a", (GOLD,)),
        ("b", (SILVER,)),
    ]
    assert found.skipped == [
        SkippedEntry(
            "reporting_structure[1].in_network_files[1]", "location is null, expected a URL string"
        ),
        SkippedEntry(
            "reporting_structure[2].in_network_files[0]",
            "location is a number, expected a URL string",
        ),
    ]


def test_read_index_every_entry_unusable_is_refused_naming_each(tmp_path: Path) -> None:
    item = structure([GOLD], "ftp://f.example/a.json")
    item["in_network_files"].append({"description": "no location"})
    path = write(tmp_path, "toc.json", toc(item))
    with pytest.raises(
        SourceError,
        match=r"^index .*toc\.json has no usable in-network file entry \(file_types in_network; "
        r"in-network file entries: 2; allowed-amount file entries: 1\); 2 skipped: "
        r"reporting_structure\[0\]\.in_network_files\[0\]: location "
        r"'ftp://f\.example/a\.json' has the unsupported scheme 'ftp'.*; "
        r"reporting_structure\[0\]\.in_network_files\[1\]: location is missing$",
    ):
        read_index(path)


@pytest.mark.parametrize(
    ("cwd", "index", "url"),
    [
        (".", "payer/toc.json", "payer/files/ppo.json.gz"),
        ("payer", "toc.json", "files/ppo.json.gz"),
        ("elsewhere", "../payer/toc.json", "../payer/files/ppo.json.gz"),
    ],
)
def test_parse_index_local_relative_location_is_relative_to_the_index_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cwd: str, index: str, url: str
) -> None:
    for folder in ("payer", "elsewhere"):  # both hold files/ppo.json.gz
        (tmp_path / folder / "files").mkdir(parents=True)
        (tmp_path / folder / "files" / "ppo.json.gz").write_bytes(b"")
    write(
        tmp_path / "payer",
        "toc.json",
        toc(structure([GOLD], "files/ppo.json.gz", "https://files.example/b.json")),
    )
    monkeypatch.chdir(tmp_path / cwd)
    assert parse_index(index) == [
        Task("b", "https://files.example/b.json", (GOLD,), ACME_EXTRA),
        Task("ppo", url, (GOLD,), ACME_EXTRA),
    ]


def test_parse_index_file_url_relative_location_is_relative_to_the_index_folder(
    tmp_path: Path,
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "ppo.json.gz").write_bytes(b"")
    path = write(tmp_path, "toc.json", toc(structure([GOLD], "files/ppo.json.gz")))
    assert [t.url for t in parse_index(path.as_uri())] == [f"{tmp_path}/files/ppo.json.gz"]


@pytest.mark.parametrize(
    ("location", "path"),
    [
        ("files/ppo.json.gz", "/toc/files/ppo.json.gz"),
        ("./files/ppo.json.gz", "/toc/files/ppo.json.gz"),
        ("../mrf/ppo.json.gz", "/mrf/ppo.json.gz"),
        ("/mrf/ppo.json.gz", "/mrf/ppo.json.gz"),
        (" files/ppo.json.gz ", "/toc/files/ppo.json.gz"),
    ],
)
def test_parse_index_over_http_resolves_relative_locations_against_its_url(
    http_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, location: str, path: str
) -> None:
    """As RFC 3986 section 5 resolves a reference: relative to the index's URL, without its
    query string; files of the working directory that have the same path are not used."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "ppo.json.gz").write_bytes(b"")
    url = http_server.add("/toc/index.json", toc(structure([GOLD], location)))
    monkeypatch.chdir(tmp_path)
    assert [t.url for t in parse_index(url + "?sig=s3cr3t")] == [http_server.base_url + path]


def test_parse_index_over_http_resolves_a_host_relative_location_with_its_scheme(
    http_server: Any,
) -> None:
    url = http_server.add("/toc/index.json", toc(structure([GOLD], "//files.example/a.json")))
    assert [t.url for t in parse_index(url)] == ["http://files.example/a.json"]


def test_parse_index_over_http_one_task_for_a_file_listed_relative_and_absolute(
    http_server: Any,
) -> None:
    url = http_server.add(
        "/toc/index.json",
        toc(
            structure([GOLD], "files/ppo.json.gz"),
            structure([SILVER], http_server.base_url + "/toc/files/ppo.json.gz"),
        ),
    )
    tasks = parse_index(url)
    assert [(t.url, t.plan_metadata) for t in tasks] == [
        (http_server.base_url + "/toc/files/ppo.json.gz", (GOLD, SILVER))
    ]


def test_parse_index_over_http_skips_a_relative_location_that_is_no_url(
    http_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = http_server.add(
        "/toc/index.json",
        toc(structure([GOLD], "files/my ppo.json.gz", "https://files.example/b.json")),
    )
    with caplog.at_level(logging.WARNING, logger="mrfbatch.sources.index"):
        assert [t.url for t in parse_index(url)] == ["https://files.example/b.json"]
    assert (
        f"skipped reporting_structure[0].in_network_files[0]: location "
        f"'{http_server.base_url}/toc/files/my ppo.json.gz' contains a space (encode it as %20)"
    ) in caplog.text


def test_parse_index_missing_relative_location_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "payer").mkdir()
    (tmp_path / "files").mkdir()  # files/ppo.json.gz of the working directory is not used
    (tmp_path / "files" / "ppo.json.gz").write_bytes(b"")
    write(tmp_path / "payer", "toc.json", toc(structure([GOLD], "files/ppo.json.gz")))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        SourceError,
        match=r"^index payer/toc\.json has no usable in-network file entry \(file_types "
        r"in_network; in-network file entries: 1; allowed-amount file entries: 1\); 1 skipped: "
        r"reporting_structure\[0\]\.in_network_files\[0\]: location 'files/ppo\.json\.gz' is "
        r"neither an http\(s\)/file URL nor an existing file \(looked for "
        r"payer/files/ppo\.json\.gz, relative to the folder of payer/toc\.json\)$",
    ):
        parse_index("payer/toc.json")


def test_parse_index_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source file .*toc\.json does not exist"):
        parse_index(tmp_path / "toc.json")


def test_parse_index_missing_file_url_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source file .*toc\.json does not exist"):
        parse_index((tmp_path / "toc.json").as_uri())


def test_parse_index_empty_file_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", b"")
    with pytest.raises(SourceError, match=r"cannot read the index: .* is empty \(0 bytes\)"):
        parse_index(path)


@pytest.mark.parametrize("depth", [60, 100_000])
def test_parse_index_deep_nesting_is_refused_early(tmp_path: Path, depth: int) -> None:
    # ijson gives every event the keys of all its levels: 100,000 levels of arrays (200 KB)
    # would take tens of GB before the first reporting structure is complete.
    item = structure([{"plan_name": "x", "nested": 0}], "https://f.example/a.json")
    text = json.dumps({"reporting_structure": [item]}).replace(
        '"nested": 0', '"nested": ' + "[" * depth + "]" * depth
    )
    path = write(tmp_path, "toc.json", text)
    with pytest.raises(
        SourceError,
        match=r"toc\.json nests arrays and objects more than 64 deep \(within its first \d+ "
        r"decoded bytes\); a table of contents needs 5 levels",
    ):
        parse_index(path)


def test_parse_index_nesting_of_64_levels_is_fine(tmp_path: Path) -> None:
    # root, reporting_structure, a structure, reporting_plans, a plan: 5 levels, then 59
    item = structure([{"plan_name": "x", "nested": 0}], "https://f.example/a.json")
    text = json.dumps({"reporting_structure": [item]}).replace(
        '"nested": 0', '"nested": ' + "[" * 59 + "]" * 59
    )
    [task] = parse_index(write(tmp_path, "toc.json", text))
    assert task.network_id == "a"


def test_parse_index_overlong_key_is_refused(tmp_path: Path) -> None:
    plan = {"plan_name": "x", "k" * 1001: 1}
    path = write(tmp_path, "toc.json", toc(structure([plan], "https://f.example/a.json")))
    with pytest.raises(
        SourceError, match=r"has a key of 1,001 characters .*expected names of at most 1,000"
    ):
        parse_index(path)


def test_parse_index_json_error_never_shows_signed_locations(tmp_path: Path) -> None:
    location = "https://f.example/a.json?Signature=SECRET1&Key-Pair-Id=SECRET2"
    data = toc(structure([GOLD], location))
    at = data.index(b"SECRET2") + len(b"SECRET2") + 1  # just after the closing quote
    path = write(tmp_path, "toc.json", data[:at] + b"@" + data[at:])
    with pytest.raises(
        SourceError, match=r"invalid JSON in .*toc\.json at decoded byte \d+"
    ) as caught:
        parse_index(path)
    assert "SECRET" not in str(caught.value)


def test_parse_index_invalid_signed_location_is_shown_redacted(tmp_path: Path) -> None:
    location = "ftp://user:PASSWORD1@f.example/a.json?Signature=SECRET1#FRAGMENT1"
    path = write(tmp_path, "toc.json", toc(structure([GOLD], location)))
    with pytest.raises(SourceError) as caught:
        parse_index(path)
    assert "location 'ftp://f.example/a.json' has the unsupported scheme 'ftp'" in str(caught.value)
    for secret in ("PASSWORD1", "SECRET1", "FRAGMENT1"):
        assert secret not in str(caught.value)


# -- entries that cannot be used are skipped, named by their position; the rest are kept -----

GOOD = structure([GOLD], "https://f.example/good.json", allowed=False)


@pytest.mark.parametrize(
    ("bad", "where", "reason"),
    [
        pytest.param(
            "oops",
            "reporting_structure[1]",
            "expected a reporting structure object, found a string",
            id="structure-not-an-object",
        ),
        pytest.param(
            {
                "reporting_plans": {"plan_name": "x"},
                "in_network_files": [{"location": "https://f.example/x.json"}],
            },
            "reporting_structure[1].reporting_plans",
            "expected an array of plan objects, found an object; the structure's files are skipped",
            id="plans-not-an-array",
        ),
        pytest.param(
            {"reporting_plans": [SILVER], "in_network_files": "https://f.example/x.json"},
            "reporting_structure[1].in_network_files",
            "expected an array of file objects, found a string",
            id="files-not-an-array",
        ),
        pytest.param(
            {"reporting_plans": [SILVER], "in_network_files": [["https://f.example/x.json"]]},
            "reporting_structure[1].in_network_files[0]",
            "expected a file object, found an array",
            id="entry-not-an-object",
        ),
        pytest.param(
            {"reporting_plans": [SILVER], "in_network_files": [{"description": "x"}]},
            "reporting_structure[1].in_network_files[0]",
            "location is missing",
            id="no-location",
        ),
        pytest.param(
            {"reporting_plans": [SILVER], "in_network_files": [{"location": True}]},
            "reporting_structure[1].in_network_files[0]",
            "location is true or false, expected a URL string",
            id="location-not-a-string",
        ),
        pytest.param(
            {
                "reporting_plans": [SILVER],
                "in_network_files": [{"location": "https://f.example/x y.json?sig=SECRET"}],
            },
            "reporting_structure[1].in_network_files[0]",
            "location 'https://f.example/x y.json' contains a space (encode it as %20)",
            id="url-that-cannot-be-sent",
        ),
        pytest.param(
            {"reporting_plans": [SILVER], "in_network_files": [{"location": "https:///x.json"}]},
            "reporting_structure[1].in_network_files[0]",
            "location 'https:///x.json' has no host name",
            id="url-without-host",
        ),
    ],
)
def test_read_index_skips_an_unusable_entry_and_keeps_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, bad: Any, where: str, reason: str
) -> None:
    path = write(tmp_path, "toc.json", toc(GOOD, bad))
    with caplog.at_level(logging.WARNING, logger="mrfbatch.sources.index"):
        found = read_index(path)
    assert found.tasks == [Task("good", "https://f.example/good.json", (GOLD,), ACME_EXTRA)]
    assert found.skipped == [SkippedEntry(where, reason)]
    assert [r.getMessage() for r in caplog.records] == [f"index {path}: skipped {where}: {reason}"]
    assert "SECRET" not in caplog.text


def test_read_index_skips_plans_that_are_not_objects_and_keeps_the_others(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(structure([GOLD, "Silver HMO", SILVER, None], "https://f.example/a.json")),
    )
    found = read_index(path)
    assert [t.plan_metadata for t in found.tasks] == [(GOLD, SILVER)]
    assert found.skipped == [
        SkippedEntry(
            "reporting_structure[0].reporting_plans[1]", "expected a plan object, found a string"
        ),
        SkippedEntry(
            "reporting_structure[0].reporting_plans[3]", "expected a plan object, found null"
        ),
    ]


def test_read_index_skips_in_order_and_says_every_position(tmp_path: Path) -> None:
    """Positions count every structure and entry, usable or not."""
    third = structure([SILVER], "https://f.example/c.json", None, "https://f.example/d.json")
    path = write(tmp_path, "toc.json", toc(GOOD, 7, third, structure([GOLD], 1.5)))
    found = read_index(path)
    assert [t.network_id for t in found.tasks] == ["c", "d", "good"]
    assert [entry.where for entry in found.skipped] == [
        "reporting_structure[1]",
        "reporting_structure[2].in_network_files[1]",
        "reporting_structure[3].in_network_files[0]",
    ]


def test_read_index_checks_each_location_once_and_skips_each_bad_entry(tmp_path: Path) -> None:
    """A file listed under many structures is checked once (kept: its plans are merged); a
    location that cannot be used is skipped wherever it is listed."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.json").write_text("{}")
    listing = ("files/a.json", "files/missing.json")
    path = write(
        tmp_path, "toc.json", toc(structure([GOLD], *listing), structure([SILVER], *listing))
    )
    found = read_index(path)
    assert [(t.url, t.plan_metadata) for t in found.tasks] == [
        (str(tmp_path / "files" / "a.json"), (GOLD, SILVER))
    ]
    assert [entry.where for entry in found.skipped] == [
        "reporting_structure[0].in_network_files[1]",
        "reporting_structure[1].in_network_files[1]",
    ]
    assert all(
        "is neither an http(s)/file URL nor an existing file" in e.reason for e in found.skipped
    )


def test_read_index_structure_that_is_not_an_object_alone_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", '{"reporting_structure": ["oops", 3]}')
    with pytest.raises(SourceError) as caught:
        read_index(path)
    assert str(caught.value) == (
        f"index {path} has no usable in-network file entry (file_types in_network; in-network "
        "file entries: 0; allowed-amount file entries: 0); 2 skipped: reporting_structure[0]: "
        "expected a reporting structure object, found a string; reporting_structure[1]: "
        "expected a reporting structure object, found a number"
    )


def test_read_index_without_problems_skips_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", toc(structure([GOLD], "https://f.example/a.json")))
    assert read_index(path).skipped == []


# -- file_types: which files become tasks ---------------------------------------------------

ALLOWED_URL = "https://files.example/allowed-amounts.json"  # what structure() lists
ALLOWED_EXTRA = {
    **ACME_EXTRA,
    "file_description": "allowed amounts",
    "file_kind": "allowed-amounts",
}


def test_read_index_allowed_amounts_makes_tasks_of_allowed_amount_files(tmp_path: Path) -> None:
    """One object per structure (the schema's form); the file shared by two structures
    carries both their plans; in-network files are left out."""
    path = write(
        tmp_path,
        "toc.json",
        toc(
            structure([GOLD], "https://f.example/a.json"),
            structure([SILVER], "https://f.example/b.json"),
        ),
    )
    assert parse_index(path, file_types="allowed_amounts") == [
        Task("allowed-amounts", ALLOWED_URL, (GOLD, SILVER), ALLOWED_EXTRA)
    ]


def test_read_index_allowed_amount_file_as_an_array(tmp_path: Path) -> None:
    """Some payers write allowed_amount_file as an array of objects, not one object."""
    item = structure([SILVER], allowed=False)
    item["allowed_amount_file"] = [
        {"description": "east", "location": "https://files.example/aa-east.json"},
        {"location": 5},
        {"description": "west", "location": "https://files.example/aa-west.json"},
    ]
    path = write(tmp_path, "toc.json", toc(item, header={}))
    found = read_index(path, file_types="allowed_amounts")
    kind = {"file_kind": "allowed-amounts"}
    assert found.tasks == [
        Task(
            "aa-east",
            "https://files.example/aa-east.json",
            (SILVER,),
            {"file_description": "east", **kind},
        ),
        Task(
            "aa-west",
            "https://files.example/aa-west.json",
            (SILVER,),
            {"file_description": "west", **kind},
        ),
    ]
    assert found.skipped == [
        SkippedEntry(
            "reporting_structure[0].allowed_amount_file[1]",
            "location is a number, expected a URL string",
        )
    ]


def test_read_index_both_gives_every_file_with_its_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "toc.json",
        toc(
            structure([GOLD], "https://f.example/a.json"),
            structure([SILVER], "https://f.example/a.json?sig=2", allowed=False),
        ),
    )
    assert parse_index(path, file_types="both") == [
        Task("a", "https://f.example/a.json", (GOLD, SILVER), ACME_EXTRA),
        Task("allowed-amounts", ALLOWED_URL, (GOLD,), ALLOWED_EXTRA),
    ]


def test_read_index_unwanted_kind_is_neither_a_task_nor_checked(tmp_path: Path) -> None:
    """file_types in_network: a bad allowed_amount_file is not looked at, so not skipped."""
    item = structure([GOLD], "https://f.example/a.json", allowed=False)
    item["allowed_amount_file"] = {"location": 42}
    found = read_index(write(tmp_path, "toc.json", toc(item)))
    assert ([t.network_id for t in found.tasks], found.skipped) == (["a"], [])


def test_read_index_allowed_amounts_of_an_index_without_any_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, "toc.json", toc(structure([GOLD], "https://f.example/a.json", allowed=False))
    )
    with pytest.raises(SourceError) as caught:
        read_index(path, file_types="allowed_amounts")
    assert str(caught.value) == (
        f"index {path} lists no allowed-amount files (reporting structures: 1; in-network file "
        "entries: 1; allowed-amount file entries: 0; file_types allowed_amounts); file_types "
        "in_network or both makes tasks of the in-network files"
    )


def test_read_index_unknown_file_types_is_a_usage_error(tmp_path: Path) -> None:
    path = write(tmp_path, "toc.json", toc(structure([GOLD], "https://f.example/a.json")))
    with pytest.raises(UsageError, match=r"file_types is 'oon'; expected one of in_network, "):
        read_index(path, file_types="oon")


def test_read_index_v2_plan_fields_are_carried_into_the_tasks(tmp_path: Path) -> None:
    """Schema 2.x reporting_plans may name the plan by EIN, with the plan sponsor and the
    issuer: every field of the plan reaches the task (no CMS example has them)."""
    plan = {
        "plan_name": "Acme Employees Plan",
        "plan_id_type": "ein",
        "plan_id": "12-3456789",
        "plan_market_type": "group",
        "plan_sponsor_name": "Acme Manufacturing Inc.",
        "issuer_name": "Acme Health Insurance Co.",
    }
    header = {
        "reporting_entity_name": "Acme TPA",
        "reporting_entity_type": "TPA",
        "version": "2.0.0",
    }
    path = write(
        tmp_path,
        "toc.json",
        toc(structure([plan], "https://f.example/employer.json.gz"), header=header),
    )
    tasks = {t.network_id: t for t in parse_index(path, file_types="both")}
    assert sorted(tasks) == ["allowed-amounts", "employer"]
    assert tasks["employer"].plan_metadata == (plan,)
    assert tasks["allowed-amounts"].plan_metadata == (plan,)
    assert tasks["employer"].extra_args == {
        "index_reporting_entity_name": "Acme TPA",
        "index_reporting_entity_type": "TPA",
        "index_version": "2.0.0",
        "file_description": "in-network file",
        "file_kind": "in-network",
    }


def test_read_index_says_how_far_it_is_while_it_reads(http_server: Any, tmp_path: Path) -> None:
    """An index of 2,000 structures served at 100 kB/s (about 4 s): while it is read, the
    progress file holds the bytes read of the served length and the structures read so far;
    once read, the file is gone."""
    structures = [
        structure([GOLD], f"https://files.example/f{i}.json", allowed=False) for i in range(2000)
    ]
    data = toc(*structures)
    url = http_server.add("/toc/big-index.json", data, rate=100_000)
    progress = tmp_path / ".source-progress.json"
    found: list[Any] = []
    reader = threading.Thread(
        target=lambda: found.append(read_index(url, None, "in_network", progress))
    )
    reader.start()
    seen: list[Snapshot] = []
    while reader.is_alive():
        snap = read_snapshot(progress)
        if snap is not None and snap.bytes_read > len(data) // 4:
            seen.append(snap)
        time.sleep(0.05)
    reader.join()
    assert len(found[0].tasks) == 2000
    assert not progress.exists()
    assert seen, "no progress file seen while the index was read"
    last = seen[-1]
    assert last.bytes_total == len(data)
    assert len(data) // 4 < last.bytes_read <= len(data)
    assert 0 < last.items_seen < 2000  # structures are read as the bytes arrive
