"""Rule `extract`: one extraction job; a failed extraction fails the job (exit status 1)."""

import sys
from pathlib import Path

snakemake = snakemake  # noqa: F821 - injected by Snakemake
# Under --use-conda the job's environment has the dependencies but not mrfbatch itself.
sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))

from mrfbatch.workflow import run_task  # noqa: E402

result = run_task(
    snakemake.params.tasks_file,
    snakemake.wildcards.network_id,
    log_path=snakemake.log.log,
    status_copy=snakemake.log.status,
    output_dir=snakemake.params.output_dir,
    cpt_whitelist=snakemake.input.whitelist[0] if snakemake.input.whitelist else None,
    provider_batch_size=snakemake.params.provider_batch_size,
    rate_batch_size=snakemake.params.rate_batch_size,
    # From the config, not params: how patiently to fetch does not change the tables, so a
    # new value must not make Snakemake redo finished extractions.
    attempts=snakemake.config["attempts"],
    retry_seconds=snakemake.config["retry_seconds"],
    timeout=snakemake.config["timeout"],
    engine=snakemake.params.engine,
    threads=snakemake.threads,
    # From the config, not a param: a new limit changes no successful output, so it must not
    # redo them (failed ones are redone anyway).
    max_value_mb=snakemake.config["max_value_mb"],
    echo=snakemake.config.get("console_echo", False),  # set by rules/common.smk
)
sys.exit(0 if result.ok else 1)
