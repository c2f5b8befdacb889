checkpoint tasks:
    input:
        get_source_files,
    output:
        PATHS.tasks,
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
