rule extract:
    input:
        whitelist=get_whitelist,
    output:
        rates=f"{OUT}/{{network_id}}/rates.parquet",
        providers=f"{OUT}/{{network_id}}/providers.parquet",
        status=f"{OUT}/{{network_id}}/status.json",
    log:
        log=f"{LOGS}/extract/{{network_id}}.log",
        status=f"{LOGS}/extract/{{network_id}}.status.json",
    retries: config["retries"]
    conda:
        "../envs/mrfbatch.yaml"
    # 2 lets the fast engine inflate gzip in a second thread (faster per file, fewer at once).
    threads: config["threads_per_job"]
    resources:
        mem_mb=get_memory,
        runtime=config["runtime"],
    params:
        task=get_fingerprint,
        tasks_file=TASKS,
        output_dir=get_output_dir_of_task,
        provider_batch_size=config["provider_batch_size"],
        rate_batch_size=config["rate_batch_size"],
        engine=config["engine"],
    script:
        "../scripts/extract.py"
