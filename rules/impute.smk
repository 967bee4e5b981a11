# Per chromosome: Beagle 5.4 with -Xmx derived from this attempt's mem_mb resource (resources are
# re-evaluated on retry, params are not), nthreads={threads}, ##contig lines restored.


rule impute:
    input:
        gt="results/prepared/{chrom}/target.vcf.gz",
        gt_index="results/prepared/{chrom}/target.vcf.gz.tbi",
        ref=PIPE.panel,
        ref_index=PIPE.panel_index,
        map="results/prepared/{chrom}/genetic.map",
    output:
        vcf="results/imputed/{chrom}.vcf.gz",
        tbi="results/imputed/{chrom}.vcf.gz.tbi",
    log:
        "logs/impute/{chrom}.log",
    benchmark:
        "results/benchmarks/impute/{chrom}.tsv"
    conda:
        "../envs/beagle.yaml"
    threads: res.threads("impute")
    resources:
        mem_mb=res.mem_mb("impute"),
        # mem_mb less what a cluster job's own Snakemake takes of it: the heap is sized from this
        tool_mem_mb=res.tool_mem_mb("impute"),
        runtime=res.runtime("impute"),
    params:
        beagle=PIPE.beagle_arguments(),
        # One JSON line per attempt (outcome, mem_mb, heap, peak RSS, GC live set -> need_mb). Not a
        # log: directive, because Snakemake deletes a failed job's logs before the retry; this
        # history must stay. The chromosched scheduler learns from it (RSS follows -Xmx for Java).
        chromosched_outcome="logs/impute/{chrom}.attempts.jsonl",
        # The RAM prior's inputs from this job's own files (the eight, overlap, the genetic length of its
        # map) and the per-window features the prior derives from them (chromosched scheduler).
        chromosched_features=res.prior_features("impute", PIPE.beagle),
    shell:
        "python -m chromosched_pipeline.imputation.beagle --gt {input.gt} --ref {input.ref} --map {input.map}"
        " --out {output.vcf} --mem-mb {resources.tool_mem_mb} --threads {threads} {params.beagle}"
        " --attempts {params.chromosched_outcome} 2> {log}"


rule imputation_quality:
    input:
        vcf="results/imputed/{chrom}.vcf.gz",
    output:
        dr2="results/quality/{chrom}.dr2.tsv",
    log:
        "logs/imputation_quality/{chrom}.log",
    conda:
        "../envs/bcftools.yaml"
    resources:
        mem_mb=res.mem_mb("imputation_quality"),
        runtime=res.runtime("imputation_quality"),
    params:
        # bcftools' peak RSS (and the wrapper's) per attempt, see rules/prepare.smk
        chromosched_outcome="logs/imputation_quality/{chrom}.attempts.jsonl",
    shell:
        # written under a temporary name and renamed, so a killed job leaves no partial table
        "trap 'rm -f {output.dr2}.tmp' EXIT;"
        " python -m chromosched_pipeline.step_outcome --outcome {params.chromosched_outcome} --"
        " bcftools query -f '%CHROM\\t%POS\\t%INFO/AF\\t%INFO/DR2\\n' -o {output.dr2}.tmp {input.vcf} 2> {log}"
        " && mv {output.dr2}.tmp {output.dr2}"
