import os

from snakemake.utils import validate

from mrfbatch.network_ids import NETWORK_ID_PATTERN, redact_url
from mrfbatch.workflow import (
    check_config,
    lock_output_dir,
    task_fingerprint,
    tasks_by_id,
    write_run_manifest,
)

check_config(config, workflow.config_settings.config)


validate(config, schema="../config/schema.yaml")


OUT = config["output_dir"]
LOGS = config["log_dir"]
TASKS = f"{OUT}/tasks.tsv"
MANIFEST = f"{OUT}/manifest.json"

if workflow.is_main_process and not workflow.dryrun:
    lock_output_dir(OUT)

# Extractor progress on the console only in a local run with --cores 1 (a cluster run's main
# process has no --cores, and its jobs log to files). Jobs read it from the config: as a
# param, a change of --cores would make Snakemake redo every extraction.
config["console_echo"] = (
    workflow.is_main_process
    and workflow.local_exec
    and workflow.resource_settings.cores == 1
)


wildcard_constraints:
    network_id=NETWORK_ID_PATTERN,


def get_source_files(wildcards):
    """The source file, when it is a local file (so editing it reruns the checkpoint)."""
    source_input = str(config["input"])
    return [] if "://" in source_input else [source_input]


def get_whitelist(wildcards):
    return [config["cpt_whitelist"]] if config.get("cpt_whitelist") else []


def get_fingerprint(wildcards):
    # A cluster job (remote mode) may not reach the checkpoint from params unless tasks.tsv is
    # an input, which would redo every extraction whenever the checkpoint reruns; it reads
    # the file the main process already made.
    tasks_file = TASKS if workflow.remote_exec else checkpoints.tasks.get().output[0]
    return task_fingerprint(tasks_file, wildcards.network_id)


def get_task_outputs(wildcards):
    """Every output of every task: the manifest guards them all."""
    ids = sorted(tasks_by_id(checkpoints.tasks.get().output[0]))
    return expand(
        f"{OUT}/{{network_id}}/{{name}}",
        network_id=ids,
        name=["rates.parquet", "providers.parquet", "status.json"],
    )


def get_output_dir_of_file(wildcards, output):
    """output_dir, from a file directly inside it (tasks.tsv, manifest.json)."""
    return os.path.dirname(output[0]) or "."


def get_output_dir_of_task(wildcards, output):
    """output_dir, from a task's output {output_dir}/{network_id}/status.json."""
    return os.path.dirname(os.path.dirname(output.status)) or "."


def get_memory(wildcards, attempt):
    return config["mem_mb"] * attempt
