# Partial PRS per chromosome from the imputed dosages, then one table per sample.


rule prs_partial:
    input:
        vcf="results/imputed/{chrom}.vcf.gz",
        scores=PIPE.scoring_file,
    output:
        partial="results/prs/partial/{chrom}.tsv",
        matches="results/prs/partial/{chrom}.matches.tsv",
    log:
        "logs/prs_partial/{chrom}.log",
    benchmark:
        "results/benchmarks/prs_partial/{chrom}.tsv"
    conda:
        "../envs/python.yaml"
    threads: res.threads("prs_partial")
    resources:
        mem_mb=res.mem_mb("prs_partial"),
        runtime=res.runtime("prs_partial"),
    params:
        # the step's own peak RSS per attempt (see rules/prepare.smk)
        chromosched_outcome="logs/prs_partial/{chrom}.attempts.jsonl",
    shell:
        "python -m chromosched_pipeline.prs.scores score --vcf {input.vcf} --chrom {wildcards.chrom}"
        " --scoring-file {input.scores} --out {output.partial} --matches {output.matches}"
        " --outcome {params.chromosched_outcome} 2> {log}"


rule prs_combine:
    input:
        partial=expand("results/prs/partial/{chrom}.tsv", chrom=CHROMS),
        matches=expand("results/prs/partial/{chrom}.matches.tsv", chrom=CHROMS),
        scores=PIPE.scoring_file,
    output:
        prs="results/prs/prs.tsv",
        summary=report(
            "results/prs/match_summary.tsv",
            caption="report/match_summary.rst",
            category="Polygenic risk score",
        ),
    log:
        "logs/prs_combine.log",
    conda:
        "../envs/python.yaml"
    resources:
        mem_mb=res.mem_mb("prs_combine"),
        runtime=res.runtime("prs_combine"),
    params:
        min_match_rate=PIPE.min_match_rate,
    shell:
        "python -m chromosched_pipeline.prs.scores combine --partial {input.partial} --matches {input.matches}"
        " --scoring-file {input.scores} --out {output.prs} --summary {output.summary}"
        " --min-match-rate {params.min_match_rate} 2> {log}"
