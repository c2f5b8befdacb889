# The run's outcome, from the tasks and their status files: manifest.json, and for analysis
# plans.parquet, files.parquet and mrfbatch.duckdb (views over this run's tables).
rule manifest:
    input:
        tasks=PATHS.tasks,
        done=get_task_targets,
    output:
        manifest=PATHS.manifest,
        plans=PATHS.plans,
        files=PATHS.files,
        database=PATHS.database,
    log:
        PATHS.manifest_log,
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    params:
        source=config["source"],
        source_input=redact_url(str(config["input"])),
        written_at_end=get_manifest_mark,
    script:
        "../scripts/manifest.py"


onsuccess:
    finish_run(RUN, write=False)


onerror:
    # A failed or incomplete extraction keeps the manifest and report rules from running;
    # their outputs are still owed.
    finish_run(RUN, write=True)
