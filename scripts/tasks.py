"""Checkpoint `tasks`: normalize the source into the tasks TSV (exit status 1 if unusable)."""

import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from mrfbatch.workflow import tasks_job  # noqa: E402

code = tasks_job(
    snakemake.params.source,
    str(snakemake.config["input"]),
    snakemake.output[0],
    snakemake.config["output_dir"],
    snakemake.log[0],
    snakemake.params.file_types,
)
sys.exit(code)
