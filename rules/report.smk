# report.html: the run's summary and the negotiated-rate distribution of each billing code.
# The figures also go into `snakemake --report` (Snakemake's report of the workflow).
rule report:
    input:
        manifest=PATHS.manifest,
        database=PATHS.database,
    output:
        html=report(PATHS.report, caption="report/run.rst", category="Run"),
        figures=report(
            directory(PATHS.figures),
            patterns=["{code}.svg"],
            caption="report/figure.rst",
            category="Negotiated rates",
            labels={"billing code": "{code}"},
        ),
    log:
        PATHS.report_log,
    localrule: True
    conda:
        "../envs/mrfbatch.yaml"
    script:
        "../scripts/report.py"
