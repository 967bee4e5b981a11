# Per chromosome: split the target VCF, rename its contig (and the map's) to the panel's naming
# (chr1 vs 1), and check the chromosome is in the panel and the map.


rule prepare_target:
    input:
        target=PIPE.target_vcf,
        target_index=PIPE.target_index,
        panel=PIPE.panel,
        panel_index=PIPE.panel_index,
        map=PIPE.genetic_map,
    output:
        vcf="results/prepared/{chrom}/target.vcf.gz",
        tbi="results/prepared/{chrom}/target.vcf.gz.tbi",
        map="results/prepared/{chrom}/genetic.map",
    log:
        "logs/prepare_target/{chrom}.log",
    benchmark:
        "results/benchmarks/prepare_target/{chrom}.tsv"
    conda:
        "../envs/python.yaml"
    threads: res.threads("prepare_target")
    resources:
        mem_mb=res.mem_mb("prepare_target"),
        runtime=res.runtime("prepare_target"),
    params:
        samples=lambda wildcards: f"--samples {PIPE.samples_file}" if PIPE.samples_file else "",
        # One JSON line per attempt with the step's own peak RSS (getrusage): it finishes before
        # Snakemake's benchmark takes its first RSS sample. The chromosched scheduler learns from it.
        chromosched_outcome="logs/prepare_target/{chrom}.attempts.jsonl",
    shell:
        "python -m chromosched_pipeline.imputation.prepare --chrom {wildcards.chrom} --target {input.target}"
        " --panel {input.panel} --map {input.map} --out-vcf {output.vcf} --out-map {output.map}"
        " {params.samples} --outcome {params.chromosched_outcome} 2> {log}"
