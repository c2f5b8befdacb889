"""Rule `extract`: one extraction job; exit status 0 success, 1 failed, 3 incomplete."""

import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

# Before anything imports pyarrow: this process only extracts (mrfbatch/lean.py).
from mrfbatch import lean  # noqa: E402

lean.set_up()

from mrfbatch.workflow import job_main  # noqa: E402

sys.exit(job_main(snakemake.wildcards.network_id, snakemake.config, snakemake.threads))
