# One job per network id. Its one output is the task's .done mark, written after a successful
# extraction only: a failed (exit 1) or incomplete (exit 3) extraction is redone by the next
# run. The tables and status.json beside the mark are not outputs, so Snakemake never deletes
# an incomplete task's tables. Whether a finished task is redone (another whitelist, batch
# size, engine, a table deleted by hand) is decided by mrfbatch.workflow.task_targets, which
# removes its mark; the job reads its settings from the config.
rule extract:
    output:
        PATHS.done("{network_id}"),
    log:
        PATHS.task_log("{network_id}"),
    retries: config["retries"]
    conda:
        "../envs/mrfbatch.yaml"
    # 2 lets the fast engine inflate gzip in a second thread (faster per file, fewer at once).
    threads: config["threads_per_job"]
    resources:
        mem_mb=get_memory,
        runtime=config["runtime"],
    script:
        "../scripts/extract.py"
