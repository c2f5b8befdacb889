# mrfbatch: negotiated rates out of price-transparency files, one job per file.
#
#   snakemake --cores 8 --config source=csv input=plans.csv     (source: csv|index|urls|url)
#
# Output contract:
#   {output_dir}/tasks.tsv                                   the normalized source (checkpoint)
#   {output_dir}/{network_id}/rates.parquet                  one row per negotiated price
#   {output_dir}/{network_id}/providers.parquet              one row per (provider group, NPI)
#   {output_dir}/{network_id}/status.json                    what the extraction did
#   {output_dir}/manifest.json                               every task's outcome
#   {log_dir}/extract/{network_id}.log                       one log per task
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/extract.smk"
include: "rules/manifest.smk"


# The task outputs are requested here too: Snakemake does not rebuild a deleted input of an
# up-to-date manifest unless a target asks for it.
rule all:
    default_target: True
    input:
        MANIFEST,
        get_task_outputs,
