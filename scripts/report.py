"""Rule `report`: report.html and one figure per billing code, from the run's database."""

import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from mrfbatch.finish import report_job  # noqa: E402

sys.exit(report_job(snakemake.config, snakemake.log[0]))
