"""Checkpoint `tasks`: normalize the source into the tasks TSV."""

import logging
import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from mrfbatch.workflow import make_tasks  # noqa: E402

logging.basicConfig(
    filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
)
make_tasks(
    snakemake.params.source,
    str(snakemake.config["input"]),
    snakemake.output[0],
    snakemake.params.output_dir,
)
