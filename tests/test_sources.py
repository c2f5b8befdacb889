"""Tests of mrfbatch.sources (csv, urls, url sources, every source through load_tasks; the
tasks TSV) and of network_ids.assign_network_ids. The index source's own tests are in
test_index.py.

Every expected value is written by hand. The hex suffixes of network ids were computed with
`printf '%s' URL | sha256sum` on the URL without its query string.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mrfbatch.errors import MrfError, SourceError, UsageError
from mrfbatch.network_ids import assign_network_ids
from mrfbatch.sources import SOURCE_TYPES, load_tasks, parse_csv, parse_url, parse_urls
from mrfbatch.tasks import (
    SkippedEntry,
    Task,
    read_skipped,
    read_task,
    read_tasks,
    write_skipped,
    write_tasks,
)
from support.tocs import GOLD, SILVER, structure, toc, write

SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


# ---------------------------------------------------------------------------------------------
# Task
# ---------------------------------------------------------------------------------------------


def test_task_compares_by_value_and_is_not_hashable() -> None:
    a = Task("x", "https://h.example/x.json", (dict(GOLD),), {"k": 1})
    b = Task("x", "https://h.example/x.json", (dict(GOLD),), {"k": 1})
    assert a == b
    assert a != Task("x", "https://h.example/x.json", (dict(GOLD),), {"k": 2})
    with pytest.raises(TypeError, match="unhashable"):
        hash(a)


def test_source_error_is_an_mrf_error() -> None:
    assert issubclass(SourceError, MrfError)
    assert SourceError.__doc__ == "A source (CSV, index, URL list) is unusable."


# ---------------------------------------------------------------------------------------------
# assign_network_ids
# ---------------------------------------------------------------------------------------------


def test_assign_network_ids_keeps_unique_file_names() -> None:
    ids = assign_network_ids(
        ["https://h.example/2024/a_in-network.json.gz?sig=1", "https://h.example/b.zip"]
    )
    assert ids == {
        "https://h.example/2024/a_in-network.json.gz?sig=1": "a_in-network",
        "https://h.example/b.zip": "b",
    }


def test_assign_network_ids_suffixes_every_url_sharing_a_file_name() -> None:
    urls = [
        "https://cdn.example/2024/in-network.json.gz?Signature=abc",
        "https://mirror.example/in-network.json.gz",
    ]
    expected = {
        "https://cdn.example/2024/in-network.json.gz?Signature=abc": "in-network-ff38a84e",
        "https://mirror.example/in-network.json.gz": "in-network-db9ad55f",
    }
    assert assign_network_ids(urls) == expected
    assert assign_network_ids(reversed(urls)) == expected


def test_assign_network_ids_query_variants_share_one_unsuffixed_id() -> None:
    ids = assign_network_ids(["https://h.example/r.json?sig=1", "https://h.example/r.json?sig=2"])
    assert ids == {"https://h.example/r.json?sig=1": "r", "https://h.example/r.json?sig=2": "r"}


def test_assign_network_ids_treats_ids_differing_in_case_as_colliding() -> None:
    ids = assign_network_ids(["https://h.example/rates.json", "https://h.example/Rates.json"])
    assert ids == {
        "https://h.example/rates.json": "rates-b7b6e321",
        "https://h.example/Rates.json": "Rates-c361d2d0",
    }


def test_assign_network_ids_lengthens_a_suffix_that_meets_another_file_name() -> None:
    # The third file is named like the first one's suffixed id (x-fc29304c).
    urls = [
        "https://a.example/x.json",
        "https://b.example/x.json",
        "https://c.example/x-fc29304c.json",
    ]
    expected = {
        "https://a.example/x.json": "x-fc29304c7f0475cd",
        "https://b.example/x.json": "x-4209b623",
        "https://c.example/x-fc29304c.json": "x-fc29304c-763818f8",
    }
    assert assign_network_ids(urls) == expected
    assert assign_network_ids(urls[::-1]) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/a/%2e%2e/x.json", "x"),
        ("https://h/", "network"),
        ("https://h", "network"),
        ("https://h/a/..%2F..%2Fetc%2Fpasswd", "passwd"),
        ("https://h/%2e%2e", "network"),
        ("https://h/we%20ird%0A%09name$.json.gz", "we_ird_name"),
        ("https://h/.hidden.json", "hidden"),
    ],
)
def test_assign_network_ids_gives_safe_ids_for_hostile_names(url: str, expected: str) -> None:
    network_id = assign_network_ids([url])[url]
    assert network_id == expected
    assert SAFE_ID.match(network_id)


def test_assign_network_ids_cuts_long_names_to_200_characters() -> None:
    url = "https://h.example/" + "a" * 300 + ".json"
    # 96529559: `printf '%s' "/aaa...a.json" | sha256sum` of the URL's path (300 a's)
    assert assign_network_ids([url]) == {url: "a" * 191 + "-96529559"}


# ---------------------------------------------------------------------------------------------
# csv
# ---------------------------------------------------------------------------------------------


def test_parse_csv_tolerates_bom_crlf_and_blank_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        b"\xef\xbb\xbf file_url ,plan_name, plan_id \r\n"
        b"\r\n"
        b"https://h.example/a.json.gz?sig=1,Gold PPO,111\r\n"
        b",,\r\n"
        b"https://h.example/b.json, Silver HMO ,\r\n",
    )
    assert parse_csv(path) == [
        Task(
            "a", "https://h.example/a.json.gz?sig=1", ({"plan_name": "Gold PPO", "plan_id": "111"},)
        ),
        Task("b", "https://h.example/b.json", ({"plan_name": "Silver HMO"},)),
    ]


def test_parse_csv_merges_rows_sharing_a_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url,plan_name,plan_id,plan_id_type\n"
        "https://h.example/r.json,Gold PPO,111,hios\n"
        "https://h.example/r.json,Silver HMO,222,hios\n"
        "https://h.example/r.json,Gold PPO,111,hios\n",
    )
    assert parse_csv(path) == [Task("r", "https://h.example/r.json", (GOLD, SILVER))]


def test_parse_csv_merges_urls_differing_only_by_query(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "plan_name,file_url\n"
        "Gold PPO,https://h.example/r.json?Signature=first\n"
        "Silver HMO,https://h.example/r.json?Signature=second\n",
    )
    assert parse_csv(path) == [
        Task(
            "r",
            "https://h.example/r.json?Signature=first",
            ({"plan_name": "Gold PPO"}, {"plan_name": "Silver HMO"}),
        )
    ]


def test_parse_csv_keeps_every_other_column_as_a_string(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url,plan_sponsor_name,issuer_name,plan_market_type,group_number,notes\n"
        'https://h.example/r.json,Acme Corp,Acme Health,group,00042,"says ""hi"", twice"\n',
    )
    [task] = parse_csv(path)
    assert task.plan_metadata == (
        {
            "plan_sponsor_name": "Acme Corp",
            "issuer_name": "Acme Health",
            "plan_market_type": "group",
            "group_number": "00042",
            "notes": 'says "hi", twice',
        },
    )


def test_parse_csv_two_files_with_the_same_name_get_suffixed_ids(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url\n"
        "https://mirror.example/in-network.json.gz\n"
        "https://cdn.example/2024/in-network.json.gz\n",
    )
    assert [(t.network_id, t.url) for t in parse_csv(path)] == [
        ("in-network-db9ad55f", "https://mirror.example/in-network.json.gz"),
        ("in-network-ff38a84e", "https://cdn.example/2024/in-network.json.gz"),
    ]


def test_parse_csv_accepts_an_existing_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "local.json.gz").write_bytes(b"")
    write(tmp_path, "plans.csv", "file_url,plan_name\nfiles/local.json.gz,Gold PPO\n")
    monkeypatch.chdir(tmp_path)
    assert parse_csv("plans.csv") == [
        Task("local", "files/local.json.gz", ({"plan_name": "Gold PPO"},))
    ]


def test_parse_csv_relative_path_is_relative_to_the_csv_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "files").mkdir(parents=True)
    (tmp_path / "data" / "files" / "2024-01_ppo.json.gz").write_bytes(b"")
    write(tmp_path / "data", "plans.csv", "file_url,plan_name\nfiles/2024-01_ppo.json.gz,Gold\n")
    monkeypatch.chdir(tmp_path)
    assert parse_csv("data/plans.csv") == [
        Task("2024-01_ppo", "data/files/2024-01_ppo.json.gz", ({"plan_name": "Gold"},))
    ]


def test_parse_csv_uses_the_csv_folder_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for folder in ("data", "elsewhere"):  # both hold files/a.json
        (tmp_path / folder / "files").mkdir(parents=True)
        (tmp_path / folder / "files" / "a.json").write_bytes(b"")
    path = write(tmp_path / "data", "plans.csv", "file_url\nfiles/a.json\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert parse_csv(path) == [Task("a", f"{tmp_path}/data/files/a.json")]
    assert parse_csv("../data/plans.csv") == [Task("a", "../data/files/a.json")]


def test_parse_csv_keeps_urls_and_absolute_paths_as_written(tmp_path: Path) -> None:
    local = write(tmp_path, "b.json", "{}")
    (tmp_path / "data").mkdir()
    path = write(
        tmp_path / "data",
        "plans.csv",
        f"file_url\n{local}\nfile:///srv/mrf/c.json.gz\nhttps://h.example/d.json?sig=1\n",
    )
    assert parse_csv(path) == [
        Task("b", f"{tmp_path}/b.json"),
        Task("c", "file:///srv/mrf/c.json.gz"),
        Task("d", "https://h.example/d.json?sig=1"),
    ]


def test_parse_csv_missing_relative_file_names_where_it_was_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "files").mkdir()  # files/a.json of the working directory is not used
    (tmp_path / "files" / "a.json").write_bytes(b"")
    write(tmp_path / "data", "plans.csv", "file_url\nhttps://h.example/b.json\nfiles/a.json\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        SourceError,
        match=r"^data/plans\.csv has an unusable row: line 3: 'files/a\.json' is neither an "
        r"http\(s\)/file URL nor an existing file \(looked for data/files/a\.json, relative to "
        r"the folder of data/plans\.csv\)$",
    ):
        parse_csv("data/plans.csv")


def test_parse_csv_reads_the_bundled_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert [
        (t.network_id, t.url, len(t.plan_metadata)) for t in parse_csv("examples/plans.csv")
    ] == [
        ("behavioral-sample", "examples/behavioral-sample.zip", 1),
        ("in-network-sample", "examples/in-network-sample.json.gz", 2),
    ]


def test_parse_csv_without_file_url_column_names_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "url,plan_name\nhttps://h.example/r.json,Gold\n")
    with pytest.raises(
        SourceError,
        match=r"plans\.csv has no 'file_url' column .*found columns: 'url', 'plan_name'; "
        r"rename 'url' to file_url$",
    ):
        parse_csv(path)


@pytest.mark.parametrize(
    ("header", "hint"),
    [
        ("plan_name,File URL", "; rename 'File URL' to file_url"),
        ("plan,mrf_location", "; rename 'mrf_location' to file_url"),
        ("plan_name,path", "; name the column of the files' URLs file_url"),
    ],
)
def test_parse_csv_without_file_url_column_says_what_to_rename(
    tmp_path: Path, header: str, hint: str
) -> None:
    path = write(tmp_path, "plans.csv", f"{header}\nGold,https://h.example/r.json\n")
    with pytest.raises(SourceError) as caught:
        parse_csv(path)
    assert str(caught.value).endswith(hint), str(caught.value)


def test_parse_csv_tab_separated_header_gets_a_hint(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url\tplan_name\nhttps://h.example/r.json\tGold\n")
    with pytest.raises(SourceError, match="looks tab-separated"):
        parse_csv(path)


def test_parse_csv_empty_file_url_names_the_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url,plan_name\nhttps://h.example/r.json,Gold\n  ,Silver\n",
    )
    with pytest.raises(SourceError, match=r"has an unusable row: line 3 has an empty file_url"):
        parse_csv(path)


def test_parse_csv_reports_every_bad_row_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url,plan_name\n"
        "ftp://h.example/r.json,Gold\n"
        "https://h.example/ok.json,Silver\n"
        "missing/file.json,Bronze\n",
    )
    with pytest.raises(SourceError) as caught:
        parse_csv(path)
    message = str(caught.value)
    assert "2 unusable rows" in message
    assert "line 2: 'ftp://h.example/r.json' has the unsupported scheme 'ftp'" in message
    assert "line 4: 'missing/file.json' is neither an http(s)/file URL nor an existing file" in (
        message
    )


def test_parse_csv_row_with_too_many_fields_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url,plan_name\nhttps://h.example/r.json,Gold,extra\n")
    with pytest.raises(SourceError, match="line 2 has 3 fields, the header 2"):
        parse_csv(path)


def test_parse_csv_value_under_an_unnamed_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url,,plan_name\nhttps://h.example/r.json,x,Gold\n")
    with pytest.raises(SourceError, match=r"line 2 has a value \('x'\) in a column with no name"):
        parse_csv(path)


def test_parse_csv_ignores_unnamed_empty_trailing_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url,plan_name,,\nhttps://h.example/r.json,Gold,,\n")
    assert parse_csv(path) == [Task("r", "https://h.example/r.json", ({"plan_name": "Gold"},))]


def test_parse_csv_duplicate_column_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url,plan_name,plan_name\nhttps://h.example/r,a,b\n")
    with pytest.raises(SourceError, match="column 'plan_name' appears twice in the header"):
        parse_csv(path)


def test_parse_csv_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source file .*nope\.csv does not exist"):
        parse_csv(tmp_path / "nope.csv")


def test_parse_csv_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="is a directory, expected a file"):
        parse_csv(tmp_path)


def test_parse_csv_non_utf8_names_byte_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", b"file_url,plan_name\nhttps://h.example/r.json,Caf\xe9\n")
    with pytest.raises(SourceError, match=r"not UTF-8 text: byte 47 \(line 2\) is b'\\xe9'"):
        parse_csv(path)


def test_parse_csv_gzipped_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv.gz", gzip.compress(b"file_url\nhttps://h.example/r\n"))
    with pytest.raises(SourceError, match="is gzip-compressed; expected plain UTF-8 text"):
        parse_csv(path)


def test_parse_csv_empty_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "\r\n\n")
    with pytest.raises(SourceError, match="is empty; expected a CSV header with a file_url column"):
        parse_csv(path)


def test_parse_csv_header_only_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url,plan_name\n")
    with pytest.raises(SourceError, match="has a header but no rows"):
        parse_csv(path)


def test_parse_csv_unreadable_csv_names_the_line(tmp_path: Path) -> None:
    huge = "x" * 200_000  # over the csv module's field size limit (131,072 characters)
    path = write(tmp_path, "plans.csv", f"file_url\nhttps://h.example/a\n{huge}\n")
    with pytest.raises(SourceError, match=r"not a readable CSV at line 3: field larger than"):
        parse_csv(path)


@pytest.mark.parametrize(("mark", "name"), [(";", "semicolon"), ("|", "pipe"), ("\t", "tab")])
def test_parse_csv_other_delimiter_gets_a_hint(tmp_path: Path, mark: str, name: str) -> None:
    path = write(
        tmp_path, "plans.csv", f"file_url{mark}plan_name\nhttps://h.example/r.json{mark}Gold\n"
    )
    with pytest.raises(
        SourceError, match=rf"line 1\); found columns: .*looks {name}-separated, expected commas"
    ):
        parse_csv(path)


def test_parse_csv_quoted_newlines_stay_in_the_cell_and_lines_stay_counted(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        'file_url,plan_name\nhttps://h.example/a.json,"Gold\nPPO\r\n2024"\n"ftp://h.example/b.json",x\n',
    )
    with pytest.raises(
        SourceError, match=r"has an unusable row: line 5: 'ftp://h\.example/b\.json'"
    ):
        parse_csv(path)
    path.write_text('file_url,plan_name\nhttps://h.example/a.json,"Gold\nPPO"\n')
    assert parse_csv(path) == [Task("a", "https://h.example/a.json", ({"plan_name": "Gold\nPPO"},))]


def test_parse_csv_unclosed_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    # Without strict quoting the rest of the file would become one plan name, silently.
    path = write(
        tmp_path,
        "plans.csv",
        'file_url,plan_name\nhttps://h.example/a.json,Gold\nhttps://h.example/b.json,"Silver\n'
        "https://h.example/c.json,Bronze\n",
    )
    with pytest.raises(
        SourceError,
        match=r"plans\.csv is not a readable CSV at line 3: unexpected end of data \(a quote "
        r"opened in the row that starts on line 3 is never closed\)",
    ):
        parse_csv(path)


def test_parse_csv_text_after_a_closing_quote_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", 'file_url,plan_name\nhttps://h.example/a.json,"Gold"PPO\n')
    with pytest.raises(SourceError, match=r"not a readable CSV at line 2: ',' expected after '\"'"):
        parse_csv(path)


def test_parse_csv_duplicate_file_url_column_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path, "plans.csv", "file_url,file_url\nhttps://h.example/a,https://h.example/b\n"
    )
    with pytest.raises(SourceError, match="column 'file_url' appears twice in the header"):
        parse_csv(path)


def test_parse_csv_nul_byte_names_byte_and_line(tmp_path: Path) -> None:
    # byte 45 is the NUL: 19 bytes of header, then "https://h.example/a.json,G" (24 + 2)
    path = write(tmp_path, "plans.csv", b"file_url,plan_name\nhttps://h.example/a.json,G\x00old\n")
    with pytest.raises(
        SourceError, match=r"plans\.csv holds a NUL byte at byte 45 \(line 2\); expected text"
    ):
        parse_csv(path)


def test_parse_csv_utf16_is_named(tmp_path: Path) -> None:
    text = "file_url,plan_name\nhttps://h.example/a.json,Gold\n"
    path = write(tmp_path, "plans.csv", text.encode("utf-16"))  # with its byte order mark
    with pytest.raises(SourceError, match="starts with a UTF-16 byte order mark; save it as UTF-8"):
        parse_csv(path)
    path.write_bytes(text.encode("utf-16-le"))  # without: a NUL after every ASCII character
    with pytest.raises(SourceError, match=r"NUL byte at byte 1 \(line 1\).*or UTF-16\?"):
        parse_csv(path)


def test_parse_csv_byte_order_marks_of_joined_files_are_dropped(tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    path = write(
        tmp_path,
        "plans.csv",
        bom
        + b"file_url,plan_name\nhttps://h.example/a.json,Gold\n"
        + bom
        + b"https://h.example/b.json,Silver\n",
    )
    assert [(t.network_id, t.plan_metadata) for t in parse_csv(path)] == [
        ("a", ({"plan_name": "Gold"},)),
        ("b", ({"plan_name": "Silver"},)),
    ]


def test_parse_csv_pipe_or_device_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "plans.csv"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    with pytest.raises(
        SourceError, match=r"plans\.csv is not a regular file \(a pipe or a device\?\)"
    ):
        parse_csv(fifo)
    with pytest.raises(SourceError, match=r"/dev/zero is not a regular file"):
        parse_csv("/dev/zero")


def test_parse_csv_bad_rows_never_show_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "plans.csv",
        "file_url\n"
        "ftp://user:PASSWORD1@h.example/a.json?Signature=SECRET1#FRAGMENT1\n"
        "https://h.example/a b.json?X-Amz-Signature=SECRET2\n",
    )
    with pytest.raises(SourceError) as caught:
        parse_csv(path)
    message = str(caught.value)
    assert "line 2: 'ftp://h.example/a.json' has the unsupported scheme 'ftp'" in message
    assert "line 3: 'https://h.example/a b.json' contains a space" in message
    for secret in ("PASSWORD1", "SECRET1", "FRAGMENT1", "SECRET2", "user"):
        assert secret not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://h.example/caf\u00e9.json",
            r"contains the non-ASCII character 'é' \(U\+00E9\) after its host; "
            r"percent-encode it as %C3%A9",
        ),
        ("https://h.example/a\u202eb.json", r"non-ASCII character '\\u202e' \(U\+202E\)"),
        ("https://h.example/a.json?q=\u200bx", r"non-ASCII character '\\u200b'"),
        ("https://a..b/x.json", "has a host name that is not a valid"),
        ("https://h\u202e.example/x.json", "has a host name that is not a valid"),
        ("https://" + "a" * 64 + ".example/x.json", "has a host name that is not a valid"),
        ("https://h.example:99999/x.json", "its port is not a number from 0 to 65535"),
        ("https://u:p@h.example:x/x.json", "its port is not a number from 0 to 65535"),
        ("http://[::1/x.json", "its host part is malformed"),
        ("https://user:pa\uff03ss@h.example/x.json", "its host part is malformed"),
    ],
)
def test_parse_csv_urls_an_http_request_would_trip_on(
    tmp_path: Path, url: str, problem: str
) -> None:
    path = write(tmp_path, "plans.csv", f"file_url\n{url}\n")
    with pytest.raises(SourceError, match=rf"line 2: .*{problem}"):
        parse_csv(path)


def test_parse_csv_international_host_name_is_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "plans.csv", "file_url\nhttps://b\u00fccher.example/x.json\n")
    assert parse_csv(path) == [Task("x", "https://b\u00fccher.example/x.json")]


# ---------------------------------------------------------------------------------------------
# urls, url
# ---------------------------------------------------------------------------------------------


def test_parse_urls_skips_blank_lines_and_comments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "urls.txt",
        "# files for January\n"
        "\n"
        "https://h.example/a.json.gz?sig=1   # the PPO\n"
        "   # indented comment\n"
        "https://h.example/b.json#part\r\n"
        "https://h.example/a.json.gz?sig=2\n",
    )
    assert parse_urls(path) == [
        Task("a", "https://h.example/a.json.gz?sig=1"),
        Task("b", "https://h.example/b.json#part"),
    ]


def test_parse_urls_reports_bad_lines_in_one_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "urls.txt",
        "https://h.example/a.json\n"
        "# ok\n"
        "not a url\n"
        "https://h.example/b.json\n"
        "ftp://h.example/c.json\n",
    )
    with pytest.raises(
        SourceError,
        match=r"urls\.txt has 2 lines that are neither an http\(s\)/file URL nor an existing "
        r"file: line 3: 'not a url' .*; line 5: 'ftp://h\.example/c\.json' has the unsupported",
    ):
        parse_urls(path)


def test_parse_urls_reports_one_bad_line_as_one(tmp_path: Path) -> None:
    path = write(tmp_path, "urls.txt", "https://h.example/a.json\nftp://h.example/c.json\n")
    with pytest.raises(
        SourceError,
        match=r"/urls\.txt has a line that is neither an http\(s\)/file URL nor an existing "
        r"file: line 2: 'ftp://h\.example/c\.json' has the unsupported scheme 'ftp'",
    ):
        parse_urls(path)


def test_parse_urls_truncates_long_bad_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "urls.txt", "x" * 500 + "\n")
    with pytest.raises(SourceError) as caught:
        parse_urls(path)
    assert f"line 1: '{'x' * 79}…'" in str(caught.value)
    assert "x" * 81 not in str(caught.value)


def test_parse_urls_url_without_host_is_bad(tmp_path: Path) -> None:
    path = write(tmp_path, "urls.txt", "https:///x.json\n")
    with pytest.raises(SourceError, match="line 1: 'https:///x.json' has no host name"):
        parse_urls(path)


def test_parse_urls_binary_junk_is_named_by_byte_or_line(tmp_path: Path) -> None:
    path = write(tmp_path, "urls.txt", b"https://h.example/a.json\n\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(SourceError, match=r"urls\.txt is not UTF-8 text: byte 25 \(line 2\)"):
        parse_urls(path)
    path.write_bytes(b"https://h.example/a.json\n\x7fELF\x02\x01\x01\x00\x00")
    with pytest.raises(SourceError, match=r"NUL byte at byte 32 \(line 2\)"):
        parse_urls(path)
    path.write_bytes(b"https://h.example/a.json\n\x1b[31mred\x07\n\x01\x02\x03\n")
    with pytest.raises(
        SourceError,
        match=r"2 lines .*: line 2: .* contains a tab, newline or control character; line 3: ",
    ):
        parse_urls(path)


def test_parse_urls_bad_lines_never_show_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "urls.txt",
        "s3://user:PASSWORD1@bucket/a.json?X-Amz-Signature=SECRET1&X-Amz-Credential=KEY1\n"
        "https://h.example/caf\u00e9.json?Key-Pair-Id=SECRET2#FRAGMENT2\n",
    )
    with pytest.raises(SourceError) as caught:
        parse_urls(path)
    message = str(caught.value)
    assert "line 1: 's3://bucket/a.json' has the unsupported scheme 's3'" in message
    assert "line 2: 'https://h.example/café.json' contains the non-ASCII character" in message
    for secret in ("PASSWORD1", "SECRET1", "KEY1", "SECRET2", "FRAGMENT2"):
        assert secret not in message


def test_parse_urls_only_comments_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "urls.txt", "# nothing yet\n\n")
    with pytest.raises(SourceError, match="lists no URLs"):
        parse_urls(path)


def test_parse_urls_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"source file .*urls\.txt does not exist"):
        parse_urls(tmp_path / "urls.txt")


def test_parse_urls_relative_path_is_relative_to_the_list_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lists" / "files").mkdir(parents=True)
    (tmp_path / "lists" / "files" / "a.json").write_bytes(b"")
    write(tmp_path / "lists", "urls.txt", "files/a.json   # local\nhttps://h.example/b.json\n")
    monkeypatch.chdir(tmp_path)
    assert parse_urls("lists/urls.txt") == [
        Task("a", "lists/files/a.json"),
        Task("b", "https://h.example/b.json"),
    ]


def test_parse_urls_in_the_working_directory_keeps_paths_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.json").write_bytes(b"")
    (tmp_path / "files" / "b.json").write_bytes(b"")
    write(tmp_path, "urls.txt", "files/a.json\n./files/b.json\n")
    monkeypatch.chdir(tmp_path)
    assert parse_urls("urls.txt") == [Task("a", "files/a.json"), Task("b", "./files/b.json")]


def test_parse_urls_missing_relative_paths_name_where_they_were_looked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lists" / "files").mkdir(parents=True)
    write(
        tmp_path / "lists",
        "urls.txt",
        "files/gone.json\nfiles\ncdn.example/c.json?Signature=SECRET1\n",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        SourceError,
        match=r"^lists/urls\.txt has 3 lines that are neither an http\(s\)/file URL nor an "
        r"existing file: line 1: 'files/gone\.json' is neither an http\(s\)/file URL nor an "
        r"existing file \(looked for lists/files/gone\.json, relative to the folder of "
        r"lists/urls\.txt\); line 2: 'files' is a directory, not a file \(looked for "
        r"lists/files, relative to the folder of lists/urls\.txt\); line 3: "
        r"'cdn\.example/c\.json' is neither an http\(s\)/file URL nor an existing file "
        r"\(looked for lists/cdn\.example/c\.json, relative to the folder of lists/urls\.txt\)$",
    ):
        parse_urls("lists/urls.txt")


def test_parse_url_returns_one_task() -> None:
    assert parse_url(" https://h.example/2024/plan_rates.json.gz?Expires=1&Signature=s ") == [
        Task("plan_rates", "https://h.example/2024/plan_rates.json.gz?Expires=1&Signature=s")
    ]


def test_parse_url_accepts_file_urls_and_existing_paths(tmp_path: Path) -> None:
    path = write(tmp_path, "local.json", "{}")
    assert parse_url(str(path)) == [Task("local", str(path))]
    assert parse_url("file:///data/remote.json.gz") == [
        Task("remote", "file:///data/remote.json.gz")
    ]


def test_parse_url_relative_path_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.json").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert parse_url("files/a.json") == [Task("a", "files/a.json")]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "the URL is empty"),
        ("s3://bucket/key.json", "has the unsupported scheme 's3'"),
        ("no/such/file.json", "is neither an http\\(s\\)/file URL nor an existing file"),
        ("https://h.example/a b.json", "contains a space"),
        ("https://h.example:port/a.json", "is not a valid URL"),
    ],
)
def test_parse_url_rejects_invalid_urls(url: str, problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        parse_url(url)


def test_parse_url_never_shows_secrets() -> None:
    with pytest.raises(SourceError) as caught:
        parse_url("gopher://user:PASSWORD1@h.example/a.json?sig=SECRET1#FRAGMENT1")
    assert str(caught.value) == (
        "'gopher://h.example/a.json' has the unsupported scheme 'gopher' "
        "(expected http, https, file or a path)"
    )


# ---------------------------------------------------------------------------------------------
# load_tasks
# ---------------------------------------------------------------------------------------------


def test_load_tasks_dispatches_every_source_type(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "plans.csv", "file_url,plan_name\nhttps://h.example/c.json,Gold\n")
    index_path = write(tmp_path, "toc.json", toc(structure([GOLD], "https://h.example/i.json")))
    urls_path = write(tmp_path, "urls.txt", "https://h.example/u.json\n")
    inputs = {
        "csv": str(csv_path),
        "index": str(index_path),
        "urls": str(urls_path),
        "url": "https://h.example/one.json",
    }
    assert set(inputs) == set(SOURCE_TYPES)
    assert {
        source: [t.network_id for t in load_tasks(source, inputs[source])] for source in inputs
    } == {
        "csv": ["c"],
        "index": ["i"],
        "urls": ["u"],
        "url": ["one"],
    }


def test_load_tasks_sorts_by_network_id(tmp_path: Path) -> None:
    path = write(
        tmp_path, "urls.txt", "https://h.example/zeta.json\nhttps://h.example/Alpha.json\n"
    )
    assert [t.network_id for t in load_tasks("urls", str(path))] == ["Alpha", "zeta"]


def test_load_tasks_unknown_source_type_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown source type 'tsv'; expected one of csv, index"):
        load_tasks("tsv", "x.tsv")


# ---------------------------------------------------------------------------------------------
# write_tasks, read_tasks
# ---------------------------------------------------------------------------------------------

TASKS = [
    Task(
        "a-1",
        "https://h.example/a-1.json.gz?Signature=x&Expires=2",
        ({"plan_name": "Tab\there\nand newline", "plan_id": 7}, {"plan_name": "Café ☃"}),
        {"index_reporting_entity_name": "Acme Health"},
    ),
    Task("b", "examples/b.zip"),
]


def test_write_tasks_round_trips_through_read_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    write_tasks(TASKS, path, "results")
    assert read_tasks(path) == TASKS
    assert read_tasks(str(path)) == TASKS


def test_write_tasks_writes_the_output_prefix_column(tmp_path: Path) -> None:
    path = tmp_path / "work" / "tasks.tsv"
    write_tasks(TASKS, path, "/data/results/")
    assert path.read_text(encoding="utf-8").split("\n") == [
        "network_id\turl\toutput_prefix\tplan_metadata\textra_args",
        "a-1\thttps://h.example/a-1.json.gz?Signature=x&Expires=2\t/data/results/a-1\t"
        '[{"plan_name":"Tab\\there\\nand newline","plan_id":7},'
        '{"plan_name":"Caf\\u00e9 \\u2603"}]\t'
        '{"index_reporting_entity_name":"Acme Health"}',
        "b\texamples/b.zip\t/data/results/b\t[]\t{}",
        "",
    ]


def test_write_skipped_round_trips_through_read_skipped(tmp_path: Path) -> None:
    path = tmp_path / "skipped-entries.json"
    entries = [
        SkippedEntry("reporting_structure[0].in_network_files[1]", "location is missing"),
        SkippedEntry("reporting_structure[2]", "expected a reporting structure object, found null"),
    ]
    write_skipped(entries, path)
    assert read_skipped(path) == (entries, 2)
    write_skipped([], path)
    assert read_skipped(path) == ([], 0)


def test_write_skipped_keeps_the_first_thousand_and_counts_all(tmp_path: Path) -> None:
    path = tmp_path / "skipped-entries.json"
    entries = [
        SkippedEntry(f"reporting_structure[{n}]", "location is missing") for n in range(1005)
    ]
    write_skipped(entries, path)
    data = json.loads(path.read_text())
    assert len(data["skipped_entries"]) == 1000 and data["skipped_entries_total"] == 1005
    assert data["skipped_entries"][999] == {
        "where": "reporting_structure[999]",
        "reason": "location is missing",
    }
    assert read_skipped(path) == (entries[:1000], 1005)


def test_read_skipped_of_a_missing_file_is_nothing(tmp_path: Path) -> None:
    assert read_skipped(tmp_path / "skipped-entries.json") == ([], 0)


def test_write_tasks_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    path.write_text("old\n")
    write_tasks([], path, "out")
    assert path.read_text() == "network_id\turl\toutput_prefix\tplan_metadata\textra_args\n"
    assert read_tasks(path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.tsv"]


def test_write_tasks_invalid_task_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    path.write_text("old\n")
    with pytest.raises(UsageError, match=r"network id '\.\./x' is not a safe folder name"):
        write_tasks([Task("../x", "https://h.example/x.json")], path, "out")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tasks.tsv"]


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        (
            [Task("..", "https://h.example/x")],
            r"network id '\.\.' is not a safe folder name: it must start with a letter",
        ),
        (
            [Task("Rates", "https://h.example/a"), Task("rates", "https://h.example/b")],
            r"network ids 'Rates' and 'rates' name the same folder",
        ),
        ([Task("x", "https://h.example/a\tb")], "URL is empty or holds a tab"),
        ([Task("x", "")], "URL is empty or holds a tab"),
        ([Task("x", "https://h.example/a", ({"n": float("nan")},))], "metadata is not JSON"),
        ([Task("x", "https://h.example/a", (), {"when": object()})], "metadata is not JSON"),
    ],
)
def test_write_tasks_rejects_tasks_it_cannot_write(
    tmp_path: Path, tasks: list[Task], problem: str
) -> None:
    with pytest.raises(UsageError, match=problem):
        write_tasks(tasks, tmp_path / "tasks.tsv", "out")


def test_write_tasks_rejects_an_empty_output_dir(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="output_dir is empty"):
        write_tasks(TASKS, tmp_path / "tasks.tsv", "")


def test_write_tasks_output_dir_root_gives_absolute_prefixes(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    write_tasks([Task("b", "examples/b.zip")], path, "/")
    assert path.read_text().split("\n")[1] == "b\texamples/b.zip\t/b\t[]\t{}"


def test_write_tasks_rejects_an_output_dir_with_a_newline(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="output_dir 'a\\\\nb' contains a tab, newline"):
        write_tasks(TASKS, tmp_path / "tasks.tsv", "a\nb")


HEADER = "network_id\turl\toutput_prefix\tplan_metadata\textra_args\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("id\turl\n", r"is not a tasks file: line 1 is 'id\\turl'"),
        (HEADER + "a\thttps://h/a\tout/a\t[]\n", "line 2 has 4 tab-separated fields, expected 5"),
        (HEADER + "a\thttps://h/a\tout/a\t[\t{}\n", "line 2: invalid JSON"),
        (HEADER + "a\thttps://h/a\tout/a\t{}\t{}\n", "plan_metadata is not a JSON array"),
        (HEADER + "a\thttps://h/a\tout/a\t[1]\t{}\n", "plan_metadata is not a JSON array"),
        (HEADER + "a\thttps://h/a\tout/a\t[]\t[]\n", "extra_args is not a JSON object"),
        (HEADER + "a/b\thttps://h/a\tout/a\t[]\t{}\n", "line 2: network id 'a/b'"),
        (
            HEADER + "a\thttps://h/a\tout/a\t[]\t{}\n\nA\thttps://h/b\tout/A\t[]\t{}\n",
            "line 4: network ids 'a' and 'A' name the same folder",
        ),
    ],
)
def test_read_tasks_rejects_malformed_files(tmp_path: Path, content: str, problem: str) -> None:
    path = write(tmp_path, "tasks.tsv", content)
    with pytest.raises(SourceError, match=problem):
        read_tasks(path)


def test_read_tasks_without_plans_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    write_tasks(TASKS, path, "results")
    assert any(task.plan_metadata for task in TASKS)
    assert read_tasks(path, plans=False) == [
        Task(task.network_id, task.url, (), task.extra_args) for task in TASKS
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("a\thttps://h/a\tout/a\t{}\t{}\n", "line 2: plan_metadata is not a JSON array"),
        ("a\thttps://h/a\tout/a\t[\t{}\n", "line 2: invalid JSON"),
        ("a\thttps://h/a\tout/a\t[]\t[]\n", "line 2: extra_args is not a JSON object"),
        ("a/b\thttps://h/a\tout/a\t[{}]\t{}\n", "line 2: network id 'a/b'"),
    ],
)
def test_read_tasks_without_plans_still_checks_each_line(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = write(tmp_path, "tasks.tsv", HEADER + line)
    with pytest.raises(SourceError, match=problem):
        read_tasks(path, plans=False)


def test_read_tasks_shares_one_dict_per_distinct_plan(tmp_path: Path) -> None:
    # an index lists a file for every plan using it: plans repeat on many lines
    plan = {"plan_name": "P", "plan_id": "1"}
    listed = {"plan_name": "L", "plan_id": "2", "states": ["CA"]}  # a list: not shared
    reordered = {"plan_id": "1", "plan_name": "P"}  # equal, but written in another order
    numbers = [{"plan_id": 1}, {"plan_id": 1.0}, {"plan_id": True}]  # equal in Python only
    tasks = [
        Task("a", "https://h/a", (plan, listed, *numbers)),
        Task("b", "https://h/b", (dict(plan), dict(listed), reordered, *numbers[::-1])),
    ]
    path = tmp_path / "tasks.tsv"
    write_tasks(tasks, path, "results")
    a, b = read_tasks(path)
    assert (a, b) == tuple(tasks)
    assert a.plan_metadata[0] is b.plan_metadata[0]
    assert a.plan_metadata[1] is not b.plan_metadata[1]
    assert list(b.plan_metadata[2]) == ["plan_id", "plan_name"]  # its own order kept
    for task in (a, b):  # each its own JSON value again
        ids = [json.dumps(p["plan_id"]) for p in task.plan_metadata if "plan_name" not in p]
        assert sorted(ids) == ["1", "1.0", "true"]


def test_read_task_finds_each_task_of_write_tasks(tmp_path: Path) -> None:
    path = tmp_path / "tasks.tsv"
    write_tasks(TASKS, path, "results")
    assert [read_task(path, task.network_id) for task in TASKS] == TASKS


@pytest.mark.parametrize("network_id", ["a", "a-", "1", "B", "c"])
def test_read_task_of_an_id_not_in_the_file_is_none(tmp_path: Path, network_id: str) -> None:
    # "a" and "a-" are prefixes of "a-1", "B" differs from "b" in case only, "c" is missing
    path = tmp_path / "tasks.tsv"
    write_tasks(TASKS, path, "results")
    assert read_task(path, network_id) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("id\turl\n", r"is not a tasks file: line 1 is 'id\\turl'"),
        (
            HEADER + "x\thttps://h/x\tout/x\t[]\t{}\na\thttps://h/a\tout/a\t[\t{}\n",
            "line 3: invalid JSON",
        ),
        (HEADER + "a\thttps://h/a\tout/a\t[]\n", "line 2 has 4 tab-separated fields, expected 5"),
        (HEADER + "a\t\tout/a\t[]\t{}\n", "line 2: task a: URL is empty"),
    ],
)
def test_read_task_rejects_a_malformed_line_of_its_id(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = write(tmp_path, "tasks.tsv", content)
    with pytest.raises(SourceError, match=problem):
        read_task(path, "a")


def test_read_task_reads_only_its_line(tmp_path: Path) -> None:
    # read_tasks refuses this file (line 3), a job of task "a" still runs
    path = write(tmp_path, "tasks.tsv", HEADER + "a\thttps://h/a\tout/a\t[]\t{}\nb\t\t\n")
    assert read_task(path, "a") == Task("a", "https://h/a")


def test_read_tasks_missing_file_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"tasks file .*tasks\.tsv does not exist"):
        read_tasks(tmp_path / "tasks.tsv")


def test_read_tasks_non_utf8_is_a_source_error(tmp_path: Path) -> None:
    path = write(tmp_path, "tasks.tsv", HEADER.encode() + b"\xff\n")
    with pytest.raises(SourceError, match=r"tasks\.tsv line 2: byte 0 of the line is not UTF-8"):
        read_tasks(path)
    path.write_bytes(b"")
    with pytest.raises(SourceError, match=r"tasks\.tsv is not a tasks file: line 1 is ''"):
        read_tasks(path)


def test_read_tasks_deeply_nested_json_is_a_source_error(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    path = write(tmp_path, "tasks.tsv", HEADER + f"a\thttps://h/a\tout/a\t{deep}\t{{}}\n")
    with pytest.raises(SourceError, match=r"tasks\.tsv line 2: JSON nested too deeply"):
        read_tasks(path)


# ---------------------------------------------------------------------------------------------
# Random and mutated sources (hypothesis)
# ---------------------------------------------------------------------------------------------

SIGNED = "?Expires=1700000000&Signature=c2lnbmF0dXJl%2Bx&Key-Pair-Id=K2JCJMDEHXQW5F"
SEED_CSV = (
    "\ufefffile_url,plan_name,plan_id,notes\r\n"
    f'https://h.example/2024/a_in-network.json.gz{SIGNED},Gold PPO,111,"says ""hi"", twice"\r\n'
    f'https://h.example/2024/a_in-network.json.gz{SIGNED},"Silver\nHMO",222,\r\n'
    "\r\n"
    "https://mirror.example/b.zip,Bronze,333,x\r\n"
).encode()
SEED_URLS = (
    "# January\n"
    f"https://h.example/a.json.gz{SIGNED}   # the PPO\n"
    "\n"
    "https://user:pw@h.example/b.json#part\r\n"
    "https://h.example/c%20d.json\n"
).encode()
SEED_INDEX = toc(
    structure([GOLD], f"https://f.example/a.json{SIGNED}", "https://f.example/b.json"),
    structure([SILVER, GOLD], "https://f.example/b.json"),
)
SEEDS = {
    "csv": ("csv", SEED_CSV),
    "urls": ("urls", SEED_URLS),
    "index": ("index", SEED_INDEX),
    "index.gz": ("index", gzip.compress(SEED_INDEX, mtime=0)),
}
FUZZ = settings(
    max_examples=150,
    deadline=None,  # the machine is shared; `bounded` below stops a real hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
JUNK = b'\x00\x1f\x8b\xff\xfe"\\,;\t\r\n#?%:/{}[]\xc3\xa9\xe2\x80\xae \x7f'


class Hang(Exception):
    """A source took longer than the deadline."""


@contextlib.contextmanager
def bounded(seconds: float) -> Iterator[None]:
    """Raise Hang in the main thread if the block runs longer than `seconds`."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


mutations = st.lists(
    st.tuples(
        st.sampled_from(["flip", "delete", "insert", "truncate", "junk"]),
        st.floats(0, 1),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=4,
)


def mutate(data: bytes, operations: list[tuple[str, float, int]]) -> bytes:
    """`data` after byte flips, deletions, insertions, truncations and junk bytes."""
    out = bytearray(data)
    for kind, where, byte in operations:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if kind == "flip" and out:
            out[at] ^= 1 << (byte % 8)
        elif kind == "delete" and out:
            del out[at : at + 1 + byte % 16]
        elif kind == "insert":
            out[at:at] = bytes([byte])
        elif kind == "truncate":
            del out[at:]
        elif kind == "junk":
            out[at:at] = JUNK[byte % len(JUNK) :][: 1 + byte % 5]
    return bytes(out)


def assert_tasks_or_source_error(source: str, where: str, tsv: Path, name: str = "") -> None:
    """load_tasks ends in tasks the workflow can write and read back, or in a SourceError
    that names the file; no other exception, within 10 seconds."""
    try:
        with bounded(10):
            tasks = load_tasks(source, where)
    except SourceError as exc:
        event(f"{source}: SourceError")
        assert name in str(exc), exc
        return
    event(f"{source}: {len(tasks)} tasks")
    assert tasks and [t.network_id for t in tasks] == sorted(t.network_id for t in tasks)
    write_tasks(tasks, tsv, "results")  # ids are safe, distinct folders; URLs fit a TSV row
    assert read_tasks(tsv) == tasks


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), operations=mutations)
def test_load_tasks_mutated_sources_end_in_tasks_or_a_source_error(
    tmp_path: Path, seed: str, operations: list[tuple[str, float, int]]
) -> None:
    source, data = SEEDS[seed]
    path = write(tmp_path, f"source.{seed}", mutate(data, operations))
    assert_tasks_or_source_error(source, str(path), tmp_path / "tasks.tsv", str(path))


@FUZZ
@given(source=st.sampled_from(["csv", "urls", "index"]), data=st.binary(max_size=300))
def test_load_tasks_random_bytes_end_in_tasks_or_a_source_error(
    tmp_path: Path, source: str, data: bytes
) -> None:
    path = write(tmp_path, f"random.{source}", data)
    assert_tasks_or_source_error(source, str(path), tmp_path / "tasks.tsv", str(path))


@FUZZ
@given(
    text=st.one_of(
        st.text(max_size=60),
        st.from_regex(r"(https?|file|ftp|HTTP)://[^\s]{0,40}", fullmatch=True),
        st.sampled_from(["https://", "http://[::1", "https://h:99999/a", "https://h/%zz"]),
    )
)
def test_load_tasks_random_url_ends_in_a_task_or_a_source_error(tmp_path: Path, text: str) -> None:
    assert_tasks_or_source_error("url", text, tmp_path / "tasks.tsv")
