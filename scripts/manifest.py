"""Rule `manifest`: build manifest.json from the tasks and their status files."""

import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from mrfbatch.finish import manifest_job  # noqa: E402

sys.exit(manifest_job(snakemake.config, snakemake.input.tasks, snakemake.log[0]))
