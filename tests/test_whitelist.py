"""Billing-code whitelists: the forms load_whitelist reads, and the files it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mrfbatch.errors import WhitelistError
from mrfbatch.whitelist import CODES_COUNTED, CodeFilter, decimals_note, load_whitelist

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ONE_PER_LINE = "expected one billing code per line, or a CSV with a billing_code column$"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "codes.txt"
    path.write_bytes(text.encode("utf-8"))  # bytes: line ends exactly as written
    return path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "# knee\n 27447 \n\nj1234  # drug\n99213\n",
            {"27447", "J1234", "99213"},
            id="one-per-line-comments-blank-lines",
        ),
        pytest.param("27447# knee\n99213\t# visit\n", {"27447", "99213"}, id="trailing-comments"),
        pytest.param("27447\r\n99213\r\n", {"27447", "99213"}, id="crlf"),
        pytest.param("27447\r99213", {"27447", "99213"}, id="cr-no-final-line-end"),
        pytest.param("\ufeff27447\n", {"27447"}, id="bom"),
        pytest.param("j1885\n g0121 \nm17.11\n", {"J1885", "G0121", "M17.11"}, id="upper-cased"),
        pytest.param(",,\n27447,\n99213;\n", {"27447", "99213"}, id="empty-values-dropped"),
        pytest.param(
            '\ufeffdescription,Billing_Code\nknee,27447\n"a, b",g0121\n,\n',
            {"27447", "G0121"},
            id="csv-comma",
        ),
        pytest.param(
            " Description ; BILLING_CODE \nknee, total;27447\nvisit;j1885\n",
            {"27447", "J1885"},
            id="csv-semicolon",
        ),
        pytest.param(
            "billing_code\tdescription\n27447\tknee, total; left\n", {"27447"}, id="csv-tab"
        ),
        pytest.param(
            'billing_code,description\n27447,"knee, total, left"\n99213,"office ""visit"""\n',
            {"27447", "99213"},
            id="csv-quoted-descriptions-with-commas",
        ),
        pytest.param(
            'billing_code,description\n27447,"knee\nreplacement"\n99213,visit\n',
            {"27447", "99213"},
            id="csv-description-over-two-lines",
        ),
        pytest.param(
            '# codes "2025\n\nbilling_code,description # header\n27447,knee #2\n# more\n\n'
            "99213,visit\n",
            {"27447", "99213"},
            id="csv-comments-and-blank-lines",
        ),
        pytest.param(
            "\ufeffbilling_code,description\r\n27447,knee\r\n", {"27447"}, id="csv-bom-crlf"
        ),
        pytest.param(
            "billing_code\n27447  # knee\nj1885\n", {"27447", "J1885"}, id="csv-one-column"
        ),
        pytest.param(
            "description,billing_code\nknee,\n,27447\n", {"27447"}, id="csv-empty-cells-skipped"
        ),
        pytest.param(
            '"27447"\n "j1885" # drug\n""\n', {"27447", "J1885"}, id="one-per-line-double-quoted"
        ),
        pytest.param("27447.0\n99213.0\n", {"27447.0", "99213.0"}, id="decimals-as-written"),
    ],
)
def test_load_whitelist_reads_file(tmp_path: Path, text: str, expected: set[str]) -> None:
    assert load_whitelist(write(tmp_path, text)) == expected


def test_load_whitelist_reads_bundled_example() -> None:
    assert load_whitelist(EXAMPLES / "codes.txt") == {"27447", "99213", "J1885"}


def test_load_whitelist_iterable_normalizes() -> None:
    assert load_whitelist([" 99213", "j1234", ""]) == {"99213", "J1234"}


def test_load_whitelist_iterable_is_not_parsed() -> None:
    assert load_whitelist(["27447,99213"]) == {"27447,99213"}


def test_load_whitelist_keeps_codes_with_decimals_as_written() -> None:
    """A payer may publish the JSON number 27447.0: such a code is its text (test_fast_engine's
    integer-billing-codes trap matches it)."""
    assert load_whitelist([27447.0, "99213.00"]) == {"27447.0", "99213.00"}


@pytest.mark.parametrize(
    ("codes", "note"),
    [
        (
            ["27447.0", "99213.0"],
            "every billing code is a whole number written with decimals ('27447.0', "
            "'99213.0'): each matches only a code published so, not '27447'; if a program "
            "wrote them from numbers (pandas does, for a column with an empty cell), write "
            "them as text",
        ),
        (
            ["0450.00", "27447.0", "470.0", "99213.0"],
            "every billing code is a whole number written with decimals ('0450.00', "
            "'27447.0', '470.0', ...): each matches only a code published so, not '0450'; if "
            "a program wrote them from numbers (pandas does, for a column with an empty "
            "cell), write them as text",
        ),
        (["27447.0", "J1885"], None),  # a program writing numbers would not write J1885
        (["81.54"], None),  # an ICD-9 procedure code (the CMS bundle example's)
        (["27447"], None),
        ([], None),
    ],
)
def test_decimals_note_when_every_code_is_a_number_with_decimals(
    codes: list[str], note: str | None
) -> None:
    assert decimals_note(codes) == note


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # No codes at all
        pytest.param(
            "",
            r"lists no billing codes: the file is empty; "
            r"expected one billing code per line, e.g\. 27447$",
            id="empty",
        ),
        pytest.param(
            "# none yet\n\n   # nor here\n",
            r"lists no billing codes, only blank lines and comments; "
            r"expected one billing code per line, e.g\. 27447$",
            id="only-comments",
        ),
        # Several values on a line of the one-code-per-line form
        pytest.param(
            "27447,99213,99214\n",
            rf"line 1: 3 values separated by commas \('27447,99213,99214'\); {ONE_PER_LINE}",
            id="commas",
        ),
        pytest.param(
            "99213 99214\n",
            rf"line 1: 2 values separated by spaces \('99213 99214'\); {ONE_PER_LINE}",
            id="spaces",
        ),
        pytest.param(
            "27447\r\n99213;99214\r\n",
            rf"line 2: 2 values separated by semicolons \('99213;99214'\); {ONE_PER_LINE}",
            id="semicolons-crlf",
        ),
        pytest.param(
            "27447\t99213\n",
            rf"line 1: 2 values separated by tabs \('27447\\t99213'\); {ONE_PER_LINE}",
            id="tabs",
        ),
        pytest.param(
            "27447;99213,99214\n",
            rf"line 1: 3 values separated by commas and semicolons \(.*\); {ONE_PER_LINE}",
            id="mixed",
        ),
        pytest.param(
            "# knee and visit\n27447, 99213  # together\n",
            rf"line 2: 2 values separated by commas \('27447, 99213'\); {ONE_PER_LINE}",
            id="comment-not-quoted",
        ),
        pytest.param(
            "27447,knee replacement\n",
            rf"line 1: 2 values separated by commas \('27447,knee replacement'\); {ONE_PER_LINE}",
            id="code-and-description",
        ),
        pytest.param(
            "27447\n1,2\n3 4\n\n5;6\n",
            rf"line 2: 2 values separated by commas \('1,2'\), and 2 more lines like it; "
            rf"{ONE_PER_LINE}",
            id="others-counted",
        ),
        # A header without a billing_code column
        pytest.param(
            "code,description\n27447,knee\n",
            r"line 1 looks like a CSV header but has no billing_code column "
            r"\(found columns 'code', 'description'\); name the column of codes billing_code$",
            id="header-comma",
        ),
        pytest.param(
            "# 2025 list\nCPT;Description\n27447;knee\n",
            r"line 2 looks like a CSV header but has no billing_code column "
            r"\(found columns 'CPT', 'Description'\); name the column of codes billing_code$",
            id="header-semicolon-after-comment",
        ),
        pytest.param(
            "ICD10\tDescription\nM17.11\tknee\n",
            r"line 1 looks like a CSV header but has no billing_code column "
            r"\(found columns 'ICD10', 'Description'\)",
            id="header-tab-with-digit",
        ),
        pytest.param(
            '"billing code","description"\n27447,knee\n',
            r"line 1 looks like a CSV header but has no billing_code column "
            r"\(found columns 'billing code', 'description'\)",
            id="header-quoted-with-space",
        ),
        pytest.param(
            ",".join(f"col{chr(97 + i)}" for i in range(12)) + "\n",
            r"\(found columns 'cola', 'colb', .*'colj' and 2 more\); name the column of codes",
            id="header-many-columns",
        ),
        # CSV with a billing_code column
        pytest.param(
            'description,billing_code\nknee,"27447,99213"\n',
            r"line 2: the billing_code cell holds 2 values separated by commas "
            r"\('27447,99213'\); expected one billing code per row$",
            id="csv-cell-commas",
        ),
        pytest.param(
            "billing_code;description\n27447,99213;knee\n",
            r"line 2: the billing_code cell holds 2 values separated by commas "
            r"\('27447,99213'\)",
            id="csv-semicolon-cell-commas",
        ),
        pytest.param(
            "billing_code,description\n27447 99213,knee\n",
            r"line 2: the billing_code cell holds 2 values separated by spaces",
            id="csv-cell-spaces",
        ),
        pytest.param(
            "billing_code\n27447\n27447,99213\n",
            r"line 3: the billing_code cell holds 2 values separated by commas "
            r"\('27447,99213'\)",
            id="csv-one-column-commas",
        ),
        pytest.param(
            "billing_code\n1 2\n3 4\n",
            r"line 2: the billing_code cell holds 2 values separated by spaces \('1 2'\), "
            r"and 1 more line like it; expected one billing code per row$",
            id="csv-cells-counted",
        ),
        pytest.param(
            "description,billing_code\nknee, total,27447\n",
            r"line 2: 3 fields where the header \(line 1\) has 2; "
            r"quote values that contain commas$",
            id="csv-more-fields-than-header",
        ),
        pytest.param(
            "description,billing_code\nknee,\n",
            r"has a billing_code column \(line 1\) with no codes",
            id="csv-no-codes",
        ),
        pytest.param(
            "# codes\nbilling_code\n",
            r"has a billing_code column \(line 2\) with no codes",
            id="csv-header-only",
        ),
        pytest.param(
            "billing_code,description,Billing_Code\n27447,knee,27447\n",
            r"line 1: the header has 2 billing_code columns \(columns 1 and 3\); keep one$",
            id="csv-two-billing-code-columns",
        ),
        pytest.param(
            'billing_code,description\n27447,"knee\n99213,visit\n',
            r"line 2: a quote opened in the row starting here is never closed",
            id="csv-quote-never-closed",
        ),
        pytest.param(
            'billing_code,description\n27447,"knee"x\n',
            r"line 2: not readable as CSV",
            id="csv-text-after-quote",
        ),
        pytest.param(
            '27447\n"J1885\n',
            r"""line 2: '"J1885' holds '"', which no billing code has """
            r"\(did you mean 'J1885'\?\); remove the characters no billing code has$",
            id="stray-quote",
        ),
        pytest.param(
            "['27447',\n'99213']\n",
            r"""line 1: "\['27447'" holds '\[', which no billing code has \(did you mean """
            r"""'27447'\?\), and 1 more line like it; remove the characters""",
            id="program-list-counted",
        ),
        pytest.param(
            "<99213>\n",
            r"line 1: '<99213>' holds '<', which no billing code has \(did you mean '99213'\?\)",
            id="angle-brackets",
        ),
        pytest.param(
            '""\n"" # none\n',
            r"lists no billing codes, only empty values; expected one billing code per line",
            id="only-empty-quotes",
        ),
        pytest.param(
            "'\n",
            r"line 1: \"'\" holds \"'\", which no billing code has; remove the characters",
            id="lone-quote-no-suggestion",
        ),
        pytest.param(
            'description,billing_code\nknee,J18"85\n',
            r"""line 2: 'J18"85' holds '"', which no billing code has \(did you mean 'J1885'\?\)""",
            id="csv-quote-inside-code",
        ),
    ],
)
def test_load_whitelist_refuses_malformed_file(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(WhitelistError, match=rf"^whitelist file {re.escape(str(path))} ") as exc:
        load_whitelist(path)
    assert re.search(message, str(exc.value)), str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize(
    "word",
    [
        "code",
        "codes",
        "CPT",
        "cpt_code",
        "HCPCS",
        "billing_codes",
        "procedure_code",
        "CPT Code",
        "Billing Code",
    ],
)
def test_load_whitelist_refuses_header_word(tmp_path: Path, word: str) -> None:
    path = write(tmp_path, f"{word}\n27447\n99213\n")
    with pytest.raises(
        WhitelistError,
        match=rf"^whitelist file .*codes\.txt line 1 \('{word}'\) looks like a column header, "
        "not a billing code; name the column billing_code",
    ):
        load_whitelist(path)


def test_load_whitelist_shortens_long_line(tmp_path: Path) -> None:
    path = write(tmp_path, "27447," * 200 + "\n")
    with pytest.raises(WhitelistError, match=r"line 1: 200 values .* \('27447,[\d,]*…'\)") as exc:
        load_whitelist(path)
    assert len(str(exc.value)) < len(str(path)) + 250


def test_load_whitelist_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(WhitelistError, match=r"whitelist file .*nope.txt does not exist"):
        load_whitelist(tmp_path / "nope.txt")


@pytest.mark.parametrize("make", ["directory", "latin-1"])
def test_load_whitelist_unreadable_file_names_it(tmp_path: Path, make: str) -> None:
    path = tmp_path / "codes.txt"
    if make == "directory":
        path.mkdir()
    else:
        path.write_bytes("27447  # genou opéré\n".encode("latin-1"))
    with pytest.raises(WhitelistError, match=r"whitelist file .*codes\.txt cannot be read: "):
        load_whitelist(path)


def test_code_filter_keeps_the_listed_codes_as_normalized_and_counts_them() -> None:
    codes = CodeFilter(frozenset({"27447", "J1885"}))
    kept = [code for code in (" 27447", "j1885", "99213", None, 27447) if codes.keep(code)]
    assert kept == [" 27447", "j1885", 27447]
    assert codes.matched == {"27447": 2, "J1885": 1}
    assert codes.wants("27447 ") and not codes.wants(None) and not codes.wants("99213")
    assert codes.matched == {"27447": 2, "J1885": 1}  # asking is not keeping


def test_code_filter_without_a_whitelist_keeps_every_item_uncounted() -> None:
    codes = CodeFilter(None)
    assert codes.keep(None) and codes.keep("anything") and codes.wants(None)
    assert codes.matched is None


def test_code_filter_counts_no_code_of_a_whitelist_too_long_to_list() -> None:
    listed = frozenset(f"C{i}" for i in range(CODES_COUNTED))
    assert CodeFilter(listed).matched == {}
    larger = CodeFilter(listed | {"27447"})
    assert larger.keep("27447") and larger.matched is None
