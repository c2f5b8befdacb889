# mrfbatch: negotiated rates out of price-transparency files, one job per file.
#
#   snakemake --cores 8 --config source=csv input=plans.csv     (source: csv|index|urls|url)
#
# Output contract (config/schema.yaml lists every key; paths: src/mrfbatch/layout.py):
#   {output_dir}/tasks.tsv                                   the normalized source (checkpoint)
#   {output_dir}/skipped-entries.json                        source entries that gave no task
#   {output_dir}/{network_id}/rates.parquet                  one row per negotiated price
#   {output_dir}/{network_id}/providers.parquet              one row per (provider group, NPI)
#                                                            (format: csv -> rates.csv, ...)
#   {output_dir}/{network_id}/status.json                    success, incomplete or failed, why
#   {output_dir}/{network_id}/.done                          the task finished with success
#   {output_dir}/manifest.json                               every task's outcome
#   {output_dir}/plans.parquet, files.parquet                the plans and the files as tables
#   {output_dir}/mrfbatch.duckdb                             views over this run's tables
#   {output_dir}/report.html, figures/                       the run's report, one SVG per code
#   {output_dir}/progress.json                               the run's state while it runs
#   {output_dir}/logs/extract/{network_id}.log               one log per task (log_dir: logs)
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/tasks.smk"
include: "rules/extract.smk"
include: "rules/manifest.smk"
include: "rules/report.smk"


# Every task's .done mark is requested here too: Snakemake does not redo a deleted input of an
# up-to-date manifest unless a target asks for it.
rule all:
    default_target: True
    input:
        PATHS.report,
        get_task_targets,
