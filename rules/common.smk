from mrfbatch import console
from mrfbatch.finish import finish_idle_run, finish_run, manifest_mark
from mrfbatch.network_ids import NETWORK_ID_PATTERN
from mrfbatch.redact import redact_url
from mrfbatch.workflow import start_run, task_targets

# Checks the config against config/schema.yaml (and fills in its defaults) and the whitelist,
# before any job; a mistake stops the run here with one line. Locks output_dir.
RUN = start_run(
    config,
    workflow.config_settings.config,
    f"{workflow.basedir}/config/schema.yaml",
    main_process=workflow.is_main_process,
    dryrun=workflow.dryrun,
    local_cores=workflow.resource_settings.cores if workflow.local_exec else None,
)
PATHS = RUN.layout
console.on_idle(lambda: finish_idle_run(RUN))


wildcard_constraints:
    network_id=NETWORK_ID_PATTERN,


def get_source_files(wildcards):
    """The source file, when it is a local file (so editing it reruns the checkpoint)."""
    source_input = str(config["input"])
    return [] if "://" in source_input else [source_input]


def get_task_targets(wildcards):
    """Every task's .done mark: the manifest waits for them all."""
    return task_targets(RUN, checkpoints.tasks.get().output[0])


def get_manifest_mark(wildcards):
    """Changes when a run's end wrote the manifest: Snakemake then redoes the manifest rule."""
    return manifest_mark(PATHS)


def get_memory(wildcards, attempt):
    return config["mem_mb"] * attempt
