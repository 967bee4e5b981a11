# Figures and tables for `snakemake --report`: PRS distribution, per-job runtime and peak memory
# (from the benchmark files of the rules above), imputation quality and, with a truth, accuracy.


rule plot_prs:
    input:
        prs="results/prs/prs.tsv",
        groups=PIPE.sample_groups or [],
    output:
        report(
            "results/report/prs_distribution.png",
            caption="report/prs_distribution.rst",
            category="Polygenic risk score",
        ),
    log:
        "logs/plot_prs.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("plot_prs"),
        runtime=res.runtime("plot_prs"),
    params:
        groups=lambda wildcards, input: f"--groups {input.groups}" if input.groups else "",
    shell:
        "python -m chromosched_pipeline.report.plots prs --prs {input.prs} {params.groups} --out {output} 2> {log}"


rule job_resources:
    input:
        # The jobs' final outputs: their benchmark files exist once these do.
        expand("results/prs/partial/{chrom}.tsv", chrom=CHROMS),
    output:
        tsv=report(
            "results/report/job_resources.tsv",
            caption="report/job_resources_table.rst",
            category="Runtime and memory",
        ),
        png=report(
            "results/report/job_resources.png",
            caption="report/job_resources.rst",
            category="Runtime and memory",
        ),
    log:
        "logs/job_resources.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("job_resources"),
        runtime=res.runtime("job_resources"),
    params:
        benchmarks=expand(
            "results/benchmarks/{rule}/{chrom}.tsv",
            rule=["prepare_target", "impute", "prs_partial"],
            chrom=CHROMS,
        ),
        attempts=expand("logs/impute/{chrom}.attempts.jsonl", chrom=CHROMS),
    shell:
        "python -m chromosched_pipeline.report.plots resources --benchmarks {params.benchmarks}"
        " --attempts {params.attempts} --out-tsv {output.tsv} --out-png {output.png} 2> {log}"


rule plot_imputation_quality:
    input:
        expand("results/quality/{chrom}.dr2.tsv", chrom=CHROMS),
    output:
        report(
            "results/report/imputation_quality.png",
            caption="report/imputation_quality.rst",
            category="Imputation",
        ),
    log:
        "logs/plot_imputation_quality.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("plot_imputation_quality"),
        runtime=res.runtime("plot_imputation_quality"),
    shell:
        "python -m chromosched_pipeline.report.plots quality --dr2 {input} --out {output} 2> {log}"


rule imputation_accuracy:
    input:
        imputed=expand("results/imputed/{chrom}.vcf.gz", chrom=CHROMS),
        truth=[PIPE.truth(c) for c in CHROMS] if PIPE.raw.get("truth") else [],
    output:
        report(
            "results/report/imputation_accuracy.tsv",
            caption="report/imputation_accuracy.rst",
            category="Imputation",
        ),
    log:
        "logs/imputation_accuracy.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("imputation_accuracy"),
        runtime=res.runtime("imputation_accuracy"),
    shell:
        "python -m chromosched_pipeline.imputation.accuracy --imputed {input.imputed} --truth {input.truth}"
        " --out {output} 2> {log}"


rule scheduler_plots:
    input:
        # Last in the run: every per-chromosome job has finished once these exist.
        "results/report/job_resources.tsv",
        "results/prs/prs.tsv",
    output:
        schedule=report(
            "results/report/scheduler_schedule.png",
            caption="report/scheduler_schedule.rst",
            category="Scheduling",
        ),
        prediction=report(
            "results/report/predicted_vs_measured.png",
            caption="report/predicted_vs_measured.rst",
            category="Scheduling",
        ),
    log:
        "logs/scheduler_plots.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("scheduler_plots"),
        runtime=res.runtime("scheduler_plots"),
    params:
        events=".chromosched/events.jsonl",
    shell:
        "python -m chromosched_pipeline.report.plots scheduler --events {params.events}"
        " --out-schedule {output.schedule} --out-prediction {output.prediction} 2> {log}"
