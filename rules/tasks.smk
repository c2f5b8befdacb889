checkpoint tasks:
    input:
        get_source_files,
    output:
        TASKS,
    log:
        f"{LOGS}/tasks.log",
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    params:
        source=config["source"],
        # Without the query string: params are kept in .snakemake/metadata.
        source_key=redact_url(str(config["input"])),
        output_dir=get_output_dir_of_file,
    script:
        "../scripts/tasks.py"
