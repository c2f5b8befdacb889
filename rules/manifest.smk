rule manifest:
    input:
        tasks=TASKS,
        outputs=get_task_outputs,
    output:
        MANIFEST,
    log:
        f"{LOGS}/manifest.log",
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    params:
        output_dir=get_output_dir_of_file,
        log_dir=LOGS,
        source=config["source"],
        source_input=redact_url(str(config["input"])),
    script:
        "../scripts/manifest.py"


onerror:
    # A failed extraction keeps the manifest rule from running; the manifest is still owed.
    write_run_manifest(
        TASKS,
        MANIFEST,
        OUT,
        LOGS,
        config["source"],
        str(config["input"]),
    )
