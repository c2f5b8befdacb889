checkpoint tasks:
    input:
        get_source_files,
    output:
        tasks=PATHS.tasks,
        # the index entries that gave no task, for the console and the manifest
        skipped=PATHS.skipped,
    log:
        PATHS.tasks_log,
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    params:
        source=config["source"],
        file_types=config["file_types"],
        # Without the query string: params are kept in .snakemake/metadata.
        source_key=redact_url(str(config["input"])),
    script:
        "../scripts/tasks.py"
