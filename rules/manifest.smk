rule manifest:
    input:
        tasks=PATHS.tasks,
        done=get_task_targets,
    output:
        PATHS.manifest,
    log:
        PATHS.manifest_log,
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    params:
        source=config["source"],
        source_input=redact_url(str(config["input"])),
    script:
        "../scripts/manifest.py"


onsuccess:
    finish_run(RUN, write=False)


onerror:
    # A failed or incomplete extraction keeps the manifest rule from running; the manifest is
    # still owed.
    finish_run(RUN, write=True)
