# 3D-genome diffusion: per chromosome (and per part of its samples), ChromoGen-family DDIM
# sampling of every 64-bead tile, seam-coherent along the chromosome; then per chromosome the
# samples, whole-chromosome coordinates and metrics against the polymer ground truth; report
# figures. Memory: the job measures peak = a + b x rows and picks its chunk size to fit the
# mem_mb it was given (gpu_mem_mb on a GPU), so a smaller allocation only runs more chunks.

from chromosched_pipeline.diffusion import rule_options as diffusion_options

DIFFUSION = PIPE.raw["diffusion"]
DIFFUSION_CHROMS = [str(c) for c in (DIFFUSION.get("chromosomes") or CHROMS)] if DIFFUSION["enabled"] else []
DIFFUSION_PARTS = list(range(-(-int(DIFFUSION["samples"]) // int(DIFFUSION["samples_per_job"]))))

if DIFFUSION["enabled"]:  # its chromosomes and checkpoint are checked with the config (config.py)
    FINAL_OUTPUTS += expand("results/diffusion/{chrom}/summary.json", chrom=DIFFUSION_CHROMS) + [
        "results/report/diffusion_contact_map.png",
        "results/report/diffusion_distance_vs_separation.png",
        "results/report/diffusion_conformation_3d.png",
        "results/report/diffusion_seams.png",
    ]


rule diffusion_sample:
    input:
        checkpoint=DIFFUSION["checkpoint"],
    output:
        part="results/diffusion/{chrom}/parts/{part}.npz",
    log:
        "logs/diffusion_sample/{chrom}/{part}.log",
    benchmark:
        "results/benchmarks/diffusion_sample/{chrom}_{part}.tsv"
    wildcard_constraints:
        part=r"\d+",
    conda:
        "../envs/diffusion.yaml"
    threads: res.threads("diffusion_sample")
    resources:
        mem_mb=res.mem_mb("diffusion_sample"),
        # mem_mb less what a cluster job's own Snakemake takes of it: the chunks are sized from this
        tool_mem_mb=res.tool_mem_mb("diffusion_sample"),
        runtime=res.runtime("diffusion_sample"),
        # GPU jobs: profiles/slurm sends --gpus; chromosched packs GPUs and GPU memory as well as RAM
        gpu=int(DIFFUSION["gpu"]),
        gpu_mem_mb=int(DIFFUSION["gpu_mem_mb"] or 0) if int(DIFFUSION["gpu"]) else 0,
    params:
        samples=lambda wildcards: diffusion_options.part_arguments(DIFFUSION, int(wildcards.part)),
        options=diffusion_options.cli_options(DIFFUSION),
        # one JSON line per attempt (ok/oom/error, peak RSS -> need_mb): the scheduler learns
        # diffusion memory from it as it does Beagle's
        chromosched_outcome="logs/diffusion_sample/{chrom}/{part}.attempts.jsonl",
    shell:
        "python -m chromosched_pipeline.diffusion sample --checkpoint {input.checkpoint}"
        " --chrom {wildcards.chrom} {params.samples} {params.options} --threads {threads}"
        " --mem-mb {resources.tool_mem_mb} --gpu-mem-mb {resources.gpu_mem_mb}"
        " --out {output.part} --outcome {params.chromosched_outcome} 2> {log}"


rule diffusion_merge:
    input:
        parts=expand("results/diffusion/{{chrom}}/parts/{part}.npz", part=DIFFUSION_PARTS),
    output:
        samples="results/diffusion/{chrom}/samples.npz",
        coordinates="results/diffusion/{chrom}/coordinates.npz",
        metrics="results/diffusion/{chrom}/metrics.tsv",
        summary="results/diffusion/{chrom}/summary.json",
    log:
        "logs/diffusion_merge/{chrom}.log",
    conda:
        "../envs/diffusion.yaml"
    resources:
        mem_mb=res.mem_mb("diffusion_merge"),
        runtime=res.runtime("diffusion_merge"),
    params:
        truth=lambda wildcards: (
            "--no-truth"
            if DIFFUSION.get("embeddings_dir")
            else f"--truth-cells {DIFFUSION['truth_cells']} --truth-seed {DIFFUSION['truth_seed']}"
        ),
        track_seed=DIFFUSION["track_seed"],
        chromosched_outcome="logs/diffusion_merge/{chrom}.attempts.jsonl",
    shell:
        "python -m chromosched_pipeline.step_outcome --outcome {params.chromosched_outcome} --"
        " python -m chromosched_pipeline.diffusion merge --parts {input.parts} --chrom {wildcards.chrom}"
        " {params.truth} --track-seed {params.track_seed} --samples {output.samples}"
        " --coordinates {output.coordinates} --metrics {output.metrics} --summary {output.summary} 2> {log}"


rule diffusion_plots:
    input:
        summaries=expand("results/diffusion/{chrom}/summary.json", chrom=DIFFUSION_CHROMS),
        metrics=expand("results/diffusion/{chrom}/metrics.tsv", chrom=DIFFUSION_CHROMS),
        coordinates=expand("results/diffusion/{chrom}/coordinates.npz", chrom=DIFFUSION_CHROMS),
    output:
        contacts=report(
            "results/report/diffusion_contact_map.png",
            caption="report/diffusion_contact_map.rst",
            category="3D genome",
        ),
        distance=report(
            "results/report/diffusion_distance_vs_separation.png",
            caption="report/diffusion_distance_vs_separation.rst",
            category="3D genome",
        ),
        render=report(
            "results/report/diffusion_conformation_3d.png",
            caption="report/diffusion_conformation_3d.rst",
            category="3D genome",
        ),
        seams=report("results/report/diffusion_seams.png", caption="report/diffusion_seams.rst", category="3D genome"),
    log:
        "logs/diffusion_plots.log",
    conda:
        "../envs/diffusion.yaml"
    resources:
        mem_mb=res.mem_mb("diffusion_plots"),
        runtime=res.runtime("diffusion_plots"),
    shell:
        "python -m chromosched_pipeline.diffusion plots --summaries {input.summaries} --metrics {input.metrics}"
        " --coordinates {input.coordinates} --contacts {output.contacts} --distance {output.distance}"
        " --render {output.render} --seams {output.seams} 2> {log}"
