checkpoint tasks:
    input:
        get_source_files,
    output:
        TASKS,
    log:
        f"{LOGS}/tasks.log",
    localrule: True
    params:
        source=config["source"],
        source_input=str(config["input"]),
        output_dir=get_output_dir_of_file,
    conda:
        "../envs/mrfbatch.yaml"
    script:
        "../scripts/tasks.py"
