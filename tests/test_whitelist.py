"""Billing-code whitelists: the forms load_whitelist reads, and the files it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrfbatch.errors import WhitelistError
from mrfbatch.whitelist import load_whitelist


def test_load_whitelist_plain_file_with_comments(tmp_path: Path) -> None:
    path = tmp_path / "codes.txt"
    path.write_text("# knee\n 27447 \n\nj1234  # drug\r\n99213\n", encoding="utf-8")
    assert load_whitelist(path) == {"27447", "J1234", "99213"}


def test_load_whitelist_csv_with_billing_code_column(tmp_path: Path) -> None:
    path = tmp_path / "codes.csv"
    path.write_text(
        '\ufeffdescription,Billing_Code\nknee,27447\n"a, b",g0121\n,\n', encoding="utf-8"
    )
    assert load_whitelist(path) == {"27447", "G0121"}


def test_load_whitelist_iterable_normalizes() -> None:
    assert load_whitelist([" 99213", "j1234", ""]) == {"99213", "J1234"}


def test_load_whitelist_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError, match=r"whitelist file .*nope.txt does not exist"):
        load_whitelist(tmp_path / "nope.txt")


def test_load_whitelist_without_codes_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("# nothing\n\n")
    with pytest.raises(WhitelistError, match=r"lists no billing codes"):
        load_whitelist(path)
