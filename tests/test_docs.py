"""Every command the documentation shows is run: here, or by CI (.ci/run).

The `sh` and `python` blocks of README.md, CONTRIBUTING.md and docs/*.md are read; each
command must be one this file runs for real (its placeholders, such as a payer's URL or your
plans.csv, replaced by local stand-ins: the bundled examples, a server on 127.0.0.1), or one
CI runs (the make targets; the SLURM profile, by tests/test_cluster.py under make
test-cluster). A command the docs gain without being run here fails the first test.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import shutil
import statistics
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from support.httpserver import FileServer

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE = ROOT / "examples" / "in-network-sample.json.gz"
CODES = "27447\n99213\n"

# Commands CI runs (.ci/run runs these make targets; make test-cluster runs the cluster tests,
# which run the workflow through a copy of profiles/slurm as docs/cluster.md says to).
RUN_BY_CI = {
    "make run": "make run",
    "make test-sanitizers": "make test-sanitizers",  # before "make test", its prefix
    "make test": "make test",
    "make check": "make check",
    "make bench": "make bench-smoke",  # the same benchmark at 20 MB
    "cp -r profiles/slurm ~/mrfbatch-cluster": "make test-cluster",
    "snakemake -s /path/to/mrfbatch/Snakefile --workflow-profile ~/mrfbatch-cluster": (
        "make test-cluster"
    ),
}
# Commands run below, each by the test named.
RUN_HERE = {
    "snakemake --cores 4 --config source=csv input=plans.csv cpt_whitelist=codes.txt": "csv",
    "snakemake --cores 8 --config source=csv input=plans.csv cpt_whitelist=codes.txt": "csv",
    "printf 'source: index": "configfile",
    "snakemake --cores 8 --configfile run.yaml --config cpt_whitelist=codes.txt": "configfile",
    "python -m mrfbatch.batch_orchestrator --source csv --input plans.csv": "orchestrator",
    "python -m mrfbatch.run_extraction": "single file",
    "from mrfbatch.run_extraction import run_extraction": "python",
    "mrfbatch-query ": "queries",
    "snakemake --report workflow-report.html": "queries",
    "import duckdb": "queries",
}


def shown_commands() -> list[tuple[str, str, str]]:
    """(document, language, command) of every command in the docs' sh and python blocks."""
    found = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for lang, body in re.findall(r"```(sh|python)\n(.*?)```", text, re.DOTALL):
            if lang == "python":
                found.append((path.name, lang, body.strip()))
                continue
            for command in body.replace("\\\n", " ").splitlines():
                command = re.sub(r"\s+#.*$", "", command).strip()
                if command:
                    found.append((path.name, lang, re.sub(r"\s+", " ", command)))
    return found


def test_every_command_in_the_docs_is_run_here_or_by_ci() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    missing = []
    for document, _, command in shown_commands():
        by_ci = next(
            (target for start, target in RUN_BY_CI.items() if command.startswith(start)), None
        )
        if by_ci is not None:
            # `time make x`, or with a variable set for it: `NAME=value make x`
            prefix = r"(time |[A-Z_]+=\S* )?"
            assert re.search(rf"^{prefix}{re.escape(by_ci)}$", ci, re.MULTILINE), by_ci
        elif not any(command.startswith(start) for start in RUN_HERE):
            missing.append(f"{document}: {command}")
    assert missing == [], "\n".join(missing)


def docs_command(start: str) -> str:
    """The one command of the docs that starts with `start` (the first, when several do)."""
    return next(command for _, _, command in shown_commands() if command.startswith(start))


def run(command: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """A shell command of the docs, with `snakemake` and `python` from this environment and
    this checkout's Snakefile."""
    command = re.sub(
        r"^snakemake ", f"{sys.executable} -m snakemake -s {ROOT / 'Snakefile'} ", command
    )
    command = re.sub(r"^python ", f"{sys.executable} ", command)
    return subprocess.run(
        command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with the docs' plans.csv (two plans of the bundled example) and codes.txt."""
    (tmp_path / "plans.csv").write_text(f"file_url,plan_name\n{EXAMPLE},A\n{EXAMPLE},B\n")
    (tmp_path / "codes.txt").write_text(CODES)
    return tmp_path


@pytest.mark.workflow
@pytest.mark.parametrize(
    "start",
    [
        "snakemake --cores 4 --config source=csv",
        "snakemake --cores 8 --config source=csv",
    ],
)
def test_docs_csv_run(work: Path, start: str) -> None:
    proc = run(docs_command(start), work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/1] in-network-sample: success" in proc.stderr
    entry = json.loads((work / "results" / "manifest.json").read_text())["extractions"][0]
    assert [plan["plan_name"] for plan in entry["plan_metadata"]] == ["A", "B"]


@pytest.mark.workflow
def test_docs_signed_index_in_a_config_file(work: Path, http_server: FileServer) -> None:
    file_url = http_server.add("/mrf/in-network.json.gz", EXAMPLE.read_bytes())
    index = {
        "reporting_entity_name": "Example",
        "reporting_entity_type": "health insurance issuer",
        "reporting_structure": [
            {
                "reporting_plans": [
                    {
                        "plan_name": "P",
                        "plan_id": "1",
                        "plan_id_type": "ein",
                        "plan_market_type": "group",
                    }
                ],  # fmt: skip
                "in_network_files": [{"description": "d", "location": file_url}],
            }
        ],
    }
    index_url = http_server.add("/index.json", gzip.compress(json.dumps(index).encode()))
    printf = docs_command("printf 'source: index").replace(
        "https://payer.example/index.json", index_url
    )
    assert run(printf, work).returncode == 0
    assert "Signature=..." in (work / "run.yaml").read_text()
    proc = run(docs_command("snakemake --cores 8 --configfile run.yaml"), work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[1/1] in-network: success" in proc.stderr
    assert "Signature" not in proc.stderr and "Signature" not in proc.stdout


@pytest.mark.workflow
def test_docs_batch_orchestrator_and_its_dry_run(work: Path) -> None:
    start = "python -m mrfbatch.batch_orchestrator --source csv --input plans.csv"
    commands = [command for _, _, command in shown_commands() if command.startswith(start)]
    dry = next(command for command in commands if command.endswith("--dry-run"))
    real = next(command for command in commands if not command.endswith("--dry-run"))
    proc = run(dry, work)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "dry run: csv source plans.csv: 1 file; 0 already done, 1 would be extracted: "
        "in-network-sample\n"
    )
    proc = run(real, work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("1 successful, 0 incomplete, 0 failed, 0 not run; manifest:")


def test_docs_single_file_command(work: Path, http_server: FileServer) -> None:
    url = http_server.add("/2024-11_in-network.json.gz", EXAMPLE.read_bytes())
    command = docs_command("python -m mrfbatch.run_extraction").replace(
        "https://payer.example/2024-11_in-network.json.gz", url
    )
    proc = run(command, work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    status = json.loads((work / "results" / "2024-11_in-network" / "status.json").read_text())
    assert status["status"] == "success" and status["rate_rows"] > 0
    assert "Signature" not in json.dumps(status) + proc.stderr


def test_docs_python_example(work: Path) -> None:
    code = docs_command("from mrfbatch.run_extraction import run_extraction")
    shutil.copy(EXAMPLE, work / "in-network.json.gz")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    status, rows, error = proc.stdout.split()
    assert (status, error) == ("success", "None") and int(rows) > 0


@pytest.fixture(scope="module")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`make run`'s run: the bundled example source and codes, in a folder of its own."""
    work = tmp_path_factory.mktemp("example-run")
    for name in ("plans.csv", "codes.txt", "in-network-sample.json.gz", "behavioral-sample.zip"):
        shutil.copy(ROOT / "examples" / name, work / name)
    proc = run(
        "snakemake --cores 2 --config source=csv input=plans.csv cpt_whitelist=codes.txt", work
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work


def query(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A `mrfbatch-query` command of the docs, with this environment's Python."""
    command = re.sub(r"^mrfbatch-query ", f"{sys.executable} -m mrfbatch.query ", command)
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=60)


def example_prices(codes: set[str]) -> dict[str, list[tuple[str, float]]]:
    """(billing code, rate) of every price of the bundled files' items with one of `codes`,
    by file name (read with json, not with mrfbatch)."""
    documents = {
        "in-network-sample": json.loads(gzip.decompress(EXAMPLE.read_bytes())),
    }
    with zipfile.ZipFile(ROOT / "examples" / "behavioral-sample.zip") as archive:
        documents["behavioral-sample"] = json.loads(archive.read(archive.namelist()[0]))
    return {
        name: [
            (str(item["billing_code"]), float(price["negotiated_rate"]))
            for item in document["in_network"]
            if str(item["billing_code"]) in codes
            for rate in item["negotiated_rates"]
            for price in rate["negotiated_prices"]
        ]
        for name, document in documents.items()
    }


@pytest.mark.workflow
def test_docs_queries_run_and_give_the_examples_numbers(example_run: Path) -> None:
    commands = [c for _, _, c in shown_commands() if c.startswith("mrfbatch-query ")]
    assert len(commands) >= 3
    for command in commands:
        proc = query(command, example_run)
        assert proc.returncode == 0, (command, proc.stderr)
    # the first query, "what does each plan pay for each code", computed here from the JSON
    plans = list(csv.DictReader(io.StringIO((ROOT / "examples" / "plans.csv").read_text())))
    codes = set((ROOT / "examples" / "codes.txt").read_text().split())
    prices = example_prices(codes)
    expected = []
    for plan in plans:
        network_id = plan["file_url"].split(".")[0]
        for code in sorted({code for code, _ in prices[network_id]}):
            rates = [rate for c, rate in prices[network_id] if c == code]
            median = round(statistics.median(rates), 2)
            expected.append((plan["plan_name"], code, len(rates), median))
    first = docs_command("mrfbatch-query ")
    proc = query(first.replace("mrfbatch-query ", "mrfbatch-query --csv ", 1), example_run)
    got = [
        (row["plan_name"], row["billing_code"], int(row["rates"]), float(row["median_rate"]))
        for row in csv.DictReader(io.StringIO(proc.stdout))
    ]
    assert got == sorted(expected)


@pytest.mark.workflow
def test_readme_shows_the_querys_real_output(example_run: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.search(r"```sh\n(mrfbatch-query [^\n]*)\n```\n\n```\n(.*?)```", readme, re.DOTALL)
    assert shown is not None, "the README's quick start ends with a query and its output"
    command, output = shown.groups()
    assert query(command, example_run).stdout.strip() == output.strip()


@pytest.mark.workflow
def test_docs_python_query_example(example_run: Path) -> None:
    code = docs_command("import duckdb")
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=example_run, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "27447" in proc.stdout and "J1885" in proc.stdout


@pytest.mark.workflow
def test_docs_snakemake_report_lists_the_figures(example_run: Path) -> None:
    proc = run(docs_command("snakemake --report workflow-report.html"), example_run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (example_run / "workflow-report.html").read_text(encoding="utf-8")
    figures = sorted(p.name for p in (example_run / "results" / "figures").glob("*.svg"))
    # one figure per code of examples/codes.txt, each in the report's results, with its caption
    assert figures == ["cpt-27447.svg", "cpt-99213.svg", "hcpcs-j1885.svg"]
    listed = sorted(set(re.findall(r'"name": "([^"]+\.svg)"', page)))
    assert listed == figures
    assert "Negotiated rates" in page and "Negotiated rates of one billing code" in page
