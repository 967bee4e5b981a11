"""Realistic demo cohorts simulated with msprime (never downloaded).

One chromosome (:func:`simulate_chromosome`) gives, under ``out_dir``::

    panel/<chrom>.vcf.gz(.tbi)   phased reference panel (n_ref samples, all segregating sites)
    target/<chrom>.vcf.gz(.tbi)  unphased array-like genotypes of n_target samples: a sparse subset
                                 of common sites, some missing calls
    truth/<chrom>.vcf.gz(.tbi)   the targets' phased genotypes at every panel site (for evaluation)
    map/<chrom>.map              hotspot recombination map, PLINK format (chrom, id, cM, bp)
    scores/<chrom>.txt           PGS Catalog-format scoring rows for this chromosome

and a cohort (:func:`simulate_cohort`, the CLI) adds ``target.vcf.gz`` (all chromosomes in one
file, as a genotyping lab would deliver it), ``scores.txt`` (one PGS Catalog scoring file),
``samples.tsv`` and ``manifest.json`` (written last: its presence means the cohort is complete).

Model: Gutenkunst et al. (2009) three-population out-of-Africa demography (YRI, CEU, CHB) plus an
admixed group formed 12 generations ago (1/6 African, 1/3 European, 1/2 East Asian, growing
from 30,000; Browning et al. 2011 style); a recombination map with background rate and ~2 kb
hotspots every ~50 kb carrying most of the crossovers; an HKY mutation model (kappa 4) so that
strand-ambiguous A/T and C/G SNPs are a realistic minority. Multi-allelic sites are written as
split biallelic records (one per ALT, the other ALT coded as REF), as released panels do.

Everything is deterministic per ``seed``: each chromosome's random streams derive from
``(seed, chromosome)``, and which individuals are reference or target depends only on ``seed``,
so a chromosome can be regenerated alone and sample names agree across chromosomes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import msprime
import numpy as np

from chromosched.errors import ChromoschedError
from chromosched.genomes import canonical_chrom, genome_lengths
from chromosched.progress import ProgressBar

from ..vcfio import exit_on_sigterm, read_header_lines, write_bgzipped_vcf, write_text_atomic
from .demography import POPULATIONS, out_of_africa_admixed_demography
from .genetic_map import hotspot_rate_map, plink_map_lines

MUTATION_RATE = 1.29e-8  # per bp per generation
HKY_KAPPA = 4.0
HKY_EQUILIBRIUM = (0.3, 0.2, 0.2, 0.3)  # A, C, G, T: AT-rich like the human genome
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}


@dataclass(frozen=True)
class ChromosomeFiles:
    """What :func:`simulate_chromosome` wrote for one chromosome, and its counts."""

    chrom: str
    length_bp: int
    panel: Path
    target: Path
    truth: Path
    map: Path
    scores: Path
    n_panel_sites: int
    n_target_sites: int
    n_score_variants: int
    seconds: float

    def as_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CohortFiles:
    """What :func:`simulate_cohort` wrote: per-chromosome files plus the cohort-level ones."""

    out_dir: Path
    target: Path
    scores: Path
    samples: Path
    manifest: Path
    chromosomes: list[ChromosomeFiles] = field(default_factory=list)


def _chrom_seed(seed: int, chrom: str) -> np.random.SeedSequence:
    """Random streams for one chromosome, independent of which other chromosomes are simulated."""
    return np.random.SeedSequence([int(seed), zlib.crc32(canonical_chrom(chrom).encode())])


def cohort_individuals(n_ref: int, n_target: int, seed: int) -> list[tuple[str, str, str]]:
    """(sample name, population, role) for every simulated individual, in msprime order.

    Individuals are spread evenly over :data:`POPULATIONS`; within each population a seeded
    choice makes some of them targets. Depends only on the sizes and ``seed``.
    """
    total = n_ref + n_target
    if n_ref < 1 or n_target < 1:
        raise ChromoschedError(f"simulate: need at least one reference and one target sample (got {n_ref}, {n_target})")
    per_pop = [total // len(POPULATIONS) + (1 if i < total % len(POPULATIONS) else 0) for i in range(len(POPULATIONS))]
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xC0]))
    target_flags = np.zeros(total, dtype=bool)
    target_flags[rng.choice(total, size=n_target, replace=False)] = True
    out = []
    i = 0
    counters = {"ref": 0, "target": 0}
    for pop, count in zip(POPULATIONS, per_pop):
        for _ in range(count):
            role = "target" if target_flags[i] else "ref"
            counters[role] += 1
            name = f"{'TGT' if role == 'target' else 'REF'}{counters[role]:04d}"
            out.append((name, pop, role))
            i += 1
    return out


def _contig_name(chrom: str, style: str) -> str:
    canonical = canonical_chrom(chrom)
    if style == "chr":
        return canonical
    if style == "plain":
        return canonical[3:]
    raise ChromoschedError(f"simulate: contig style must be 'chr' or 'plain', not '{style}'")


def _vcf_header(contig: str, length_bp: int, samples: Sequence[str], seed: int, note: str) -> list[str]:
    return [
        "##fileformat=VCFv4.2",
        f"##source=chromosched_pipeline.demo_data.simulate msprime={msprime.__version__} seed={seed} ({note})",
        f"##contig=<ID={contig},length={length_bp}>",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t" + "\t".join(samples),
    ]


def _phased_rows(codes: np.ndarray) -> Iterable[str]:
    """'a|b' strings per row from a (sites, 2*samples) 0/1 array, samples as consecutive pairs."""
    lookup = np.array(["0|0", "0|1", "1|0", "1|1"])
    idx = codes[:, 0::2] * 2 + codes[:, 1::2]
    for row in idx:
        yield "\t".join(lookup[row])


def simulate_chromosome(
    chrom: str,
    length_bp: int,
    out_dir: str | Path,
    n_ref: int = 500,
    n_target: int = 100,
    array_density: float = 0.3,
    missing_rate: float = 0.01,
    seed: int = 1,
    score_fraction: float = 0.02,
    score_absent_fraction: float = 0.05,
    score_flip_fraction: float = 0.1,
    contig_style: str = "chr",
    target_contig_style: str | None = None,
) -> ChromosomeFiles:
    """Simulate one chromosome of the cohort and write its files under ``out_dir`` (atomically).

    Args:
        chrom: chromosome name (``chr7`` or ``7``); files are named by its canonical ``chrN`` form.
        length_bp: simulated length (e.g. GRCh37 length / 100).
        n_ref, n_target: reference-panel and target sample counts (diploid individuals).
        array_density: fraction of the panel's common (panel MAF >= 5%) biallelic SNPs genotyped
            in the targets, like a genotyping array.
        missing_rate: probability that a target genotype call is missing (``./.``).
        seed: master seed; the same seed gives byte-identical files.
        score_fraction: fraction of panel records that get a PRS weight.
        score_absent_fraction: extra scoring rows (relative to the weighted ones) at positions
            the panel lacks, so the PRS step has missing variants to count.
        score_flip_fraction: fraction of non-ambiguous scoring rows written on the opposite
            strand (complemented alleles), as older scoring files sometimes are.
        contig_style: ``chr`` (``chr7``) or ``plain`` (``7``) contig names in panel and map.
        target_contig_style: naming in the target VCF (default: same as ``contig_style``).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    canonical = canonical_chrom(chrom)
    contig = _contig_name(chrom, contig_style)
    target_contig = _contig_name(chrom, target_contig_style or contig_style)
    length_bp = int(length_bp)
    if length_bp < 10_000:
        raise ChromoschedError(f"simulate: chromosome {chrom} length {length_bp} bp is too short (need >= 10000)")
    if not 0 < array_density <= 1:
        raise ChromoschedError(f"simulate: array_density must be in (0, 1], not {array_density}")
    if not 0 <= missing_rate < 1:
        raise ChromoschedError(f"simulate: missing_rate must be in [0, 1), not {missing_rate}")

    ss_ancestry, ss_mutation, ss_map, ss_array, ss_scores = _chrom_seed(seed, chrom).spawn(5)
    rng_map = np.random.default_rng(ss_map)
    rate_map = hotspot_rate_map(length_bp, rng_map)

    individuals = cohort_individuals(n_ref, n_target, seed)
    samples_per_pop = {pop: sum(1 for _, p, _ in individuals if p == pop) for pop in POPULATIONS}
    ts = msprime.sim_ancestry(
        samples={pop: n for pop, n in samples_per_pop.items() if n},
        demography=out_of_africa_admixed_demography(),
        recombination_rate=rate_map,
        sequence_length=length_bp,
        random_seed=int(ss_ancestry.generate_state(1)[0]),
    )
    ts = msprime.sim_mutations(
        ts,
        rate=MUTATION_RATE,
        model=msprime.HKY(kappa=HKY_KAPPA, equilibrium_frequencies=list(HKY_EQUILIBRIUM)),
        random_seed=int(ss_mutation.generate_state(1)[0]),
    )

    # Haplotype columns per individual, in the order of `individuals` (msprime's order).
    node_cols = np.array([n for ind in ts.individuals() for n in ind.nodes])
    roles = np.array([role for _, _, role in individuals])
    names = [name for name, _, _ in individuals]
    ref_idx = np.flatnonzero(roles == "ref")
    tgt_idx = np.flatnonzero(roles == "target")
    ref_hap = np.stack([2 * ref_idx, 2 * ref_idx + 1], axis=1).ravel()
    tgt_hap = np.stack([2 * tgt_idx, 2 * tgt_idx + 1], axis=1).ravel()
    ref_names = [names[i] for i in ref_idx]
    tgt_names = [names[i] for i in tgt_idx]

    # Split every site into biallelic records (REF = ancestral allele), drop alleles absent from the panel.
    positions: list[int] = []
    refs: list[str] = []
    alts: list[str] = []
    multi: list[bool] = []
    rows: list[np.ndarray] = []
    last_pos = 0
    for var in ts.variants(samples=node_cols, isolated_as_missing=False):
        pos = int(var.site.position) + 1  # VCF is 1-based
        if pos > length_bp or pos <= last_pos:
            continue
        genotypes = var.genotypes
        present = [k for k in range(1, len(var.alleles)) if var.alleles[k] and np.any(genotypes[ref_hap] == k)]
        if not present:
            continue
        last_pos = pos
        for k in present:
            positions.append(pos)
            refs.append(var.alleles[0])
            alts.append(var.alleles[k])
            multi.append(len(present) > 1)
            rows.append((genotypes == k).astype(np.int8))
    if not rows:
        raise ChromoschedError(f"simulate: chromosome {chrom} of {length_bp} bp produced no variants")
    codes = np.vstack(rows)  # (records, 2 * individuals) 0/1
    positions_a = np.array(positions)
    ids = [f"{contig}:{p}:{r}:{a}" for p, r, a in zip(positions, refs, alts)]

    # Reference panel (phased) and truth (phased targets at every panel record).
    panel_path = out_dir / "panel" / f"{canonical}.vcf.gz"
    truth_path = out_dir / "truth" / f"{canonical}.vcf.gz"
    fixed = [f"{contig}\t{p}\t{i}\t{r}\t{a}\t.\tPASS\t.\tGT" for p, i, r, a in zip(positions, ids, refs, alts)]
    ref_codes = codes[:, ref_hap]
    tgt_codes = codes[:, tgt_hap]
    write_bgzipped_vcf(
        panel_path,
        _vcf_header(contig, length_bp, ref_names, seed, "phased reference panel"),
        (f + "\t" + g for f, g in zip(fixed, _phased_rows(ref_codes))),
    )
    write_bgzipped_vcf(
        truth_path,
        _vcf_header(contig, length_bp, tgt_names, seed, "phased truth of the target samples"),
        (f + "\t" + g for f, g in zip(fixed, _phased_rows(tgt_codes))),
    )

    # Array-like targets: a sparse subset of common biallelic SNPs, unphased, some calls missing.
    rng_array = np.random.default_rng(ss_array)
    panel_af = ref_codes.mean(axis=1)
    common = (np.minimum(panel_af, 1 - panel_af) >= 0.05) & ~np.array(multi)
    candidates = np.flatnonzero(common)
    n_array = max(1, int(round(array_density * len(candidates)))) if len(candidates) else 0
    chosen = np.sort(rng_array.choice(candidates, size=n_array, replace=False)) if n_array else np.array([], int)
    dosage = tgt_codes[chosen, 0::2] + tgt_codes[chosen, 1::2]
    missing = rng_array.random(dosage.shape) < missing_rate
    unphased = np.array(["0/0", "0/1", "1/1", "./."])
    dosage = np.where(missing, 3, dosage)
    target_path = out_dir / "target" / f"{canonical}.vcf.gz"
    write_bgzipped_vcf(
        target_path,
        _vcf_header(target_contig, length_bp, tgt_names, seed, "unphased array genotypes"),
        (
            f"{target_contig}\t{positions[i]}\t{ids[i]}\t{refs[i]}\t{alts[i]}\t.\tPASS\t.\tGT\t"
            + "\t".join(unphased[row])
            for i, row in zip(chosen, dosage)
        ),
    )

    # Map and scoring rows.
    map_path = out_dir / "map" / f"{canonical}.map"
    write_text_atomic(map_path, "\n".join(plink_map_lines(rate_map, contig)) + "\n")
    scores_path = out_dir / "scores" / f"{canonical}.txt"
    score_lines = _scoring_rows(
        canonical[3:],
        positions_a,
        refs,
        alts,
        length_bp,
        np.random.default_rng(ss_scores),
        score_fraction,
        score_absent_fraction,
        score_flip_fraction,
    )
    write_text_atomic(scores_path, "".join(line + "\n" for line in score_lines))
    return ChromosomeFiles(
        chrom=canonical,
        length_bp=length_bp,
        panel=panel_path,
        target=target_path,
        truth=truth_path,
        map=map_path,
        scores=scores_path,
        n_panel_sites=len(positions),
        n_target_sites=int(n_array),
        n_score_variants=len(score_lines),
        seconds=round(time.perf_counter() - started, 3),
    )


def _scoring_rows(
    chr_name: str,
    positions: np.ndarray,
    refs: Sequence[str],
    alts: Sequence[str],
    length_bp: int,
    rng: np.random.Generator,
    fraction: float,
    absent_fraction: float,
    flip_fraction: float,
) -> list[str]:
    """PGS Catalog rows (chr_name, chr_position, effect_allele, other_allele, effect_weight).

    The effect allele is REF or ALT at random (so half the rows need 2 - DS), some rows are
    complemented (strand flips; never for A/T or C/G SNPs, whose flip is undetectable) and some
    sit at positions the panel lacks.
    """
    n = len(positions)
    k = min(n, max(1, int(round(fraction * n))))
    picked = np.sort(rng.choice(n, size=k, replace=False))
    rows: list[tuple[int, str]] = []
    for i in picked:
        ref, alt = refs[i], alts[i]
        effect, other = (ref, alt) if rng.random() < 0.5 else (alt, ref)
        ambiguous = COMPLEMENT.get(ref) == alt
        if not ambiguous and rng.random() < flip_fraction:
            effect, other = COMPLEMENT[effect], COMPLEMENT[other]
        weight = rng.normal(0.0, 0.05)
        rows.append((int(positions[i]), f"{chr_name}\t{int(positions[i])}\t{effect}\t{other}\t{weight:.6f}"))
    taken = set(int(p) for p in positions)
    n_absent = int(round(absent_fraction * k))
    bases = "ACGT"
    while n_absent > 0:
        pos = int(rng.integers(1, length_bp + 1))
        if pos in taken:
            continue
        taken.add(pos)
        a, b = rng.choice(4, size=2, replace=False)
        rows.append((pos, f"{chr_name}\t{pos}\t{bases[a]}\t{bases[b]}\t{rng.normal(0.0, 0.05):.6f}"))
        n_absent -= 1
    rows.sort(key=lambda r: r[0])
    return [line for _, line in rows]


SCORING_COLUMNS = "chr_name\tchr_position\teffect_allele\tother_allele\teffect_weight"


def pgs_catalog_header(n_variants: int, genome_build: str, seed: int) -> list[str]:
    """The comment header of a PGS Catalog scoring file (format version 2.0)."""
    return [
        "###PGS CATALOG SCORING FILE - simulated by chromosched_pipeline.demo_data.simulate",
        "#format_version=2.0",
        "##POS_INFO",
        "#pgs_id=PGS_SIMULATED",
        f"#pgs_name=chromosched_demo_seed{seed}",
        "#trait_reported=simulated quantitative trait",
        f"#genome_build={genome_build}",
        f"#variants_number={n_variants}",
        "##SOURCE INFORMATION",
        "#weight_type=beta",
    ]


def simulate_cohort(
    out_dir: str | Path,
    genome: str = "GRCh37",
    scale: float = 100.0,
    chromosomes: Sequence[str] | None = None,
    n_ref: int = 500,
    n_target: int = 100,
    array_density: float = 0.3,
    missing_rate: float = 0.01,
    seed: int = 1,
    contig_style: str = "chr",
    target_contig_style: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CohortFiles:
    """Simulate every chromosome (length = genome length / ``scale``) and the cohort-level files.

    ``manifest.json`` is written last; it lists the parameters and per-chromosome counts.
    """
    out_dir = Path(out_dir)
    lengths = genome_lengths(genome)
    if scale <= 0:
        raise ChromoschedError(f"simulate: scale must be positive, not {scale}")
    order = list(lengths)
    chroms = [canonical_chrom(c) for c in (chromosomes or order)]
    unknown = [c for c in chroms if c not in lengths]
    if unknown:
        raise ChromoschedError(f"simulate: chromosome {unknown[0]} is not an autosome of {genome}")
    chroms = sorted(dict.fromkeys(chroms), key=order.index)  # genome order, as a cohort VCF must be
    report = progress or (lambda _msg: None)
    results: list[ChromosomeFiles] = []
    for i, chrom in enumerate(chroms, 1):
        files = simulate_chromosome(
            chrom,
            int(lengths[chrom] / scale),
            out_dir,
            n_ref=n_ref,
            n_target=n_target,
            array_density=array_density,
            missing_rate=missing_rate,
            seed=seed,
            contig_style=contig_style,
            target_contig_style=target_contig_style,
        )
        results.append(files)
        report(
            f"[{i}/{len(chroms)}] {chrom}: {files.length_bp:,} bp, {files.n_panel_sites:,} panel records, "
            f"{files.n_target_sites:,} array sites, {files.n_score_variants} scoring rows ({files.seconds:.1f} s)"
        )

    # One cohort target VCF with every chromosome, as delivered by a genotyping lab.
    headers = [read_header_lines(f.target) for f in results]
    first = headers[0]
    contig_lines = [line for h in headers for line in h if line.startswith("##contig")]
    header = [first[0]] + [line for line in first[1:-1] if not line.startswith("##contig")] + contig_lines + [first[-1]]

    def cohort_records() -> Iterable[str]:
        for f in results:
            with gzip.open(f.target, "rt") as fh:
                for line in fh:
                    if not line.startswith("#"):
                        yield line.rstrip("\n")

    target = out_dir / "target.vcf.gz"
    write_bgzipped_vcf(target, header, cohort_records())

    score_rows = [line for f in results for line in f.scores.read_text().splitlines() if line]
    scores = out_dir / "scores.txt"
    write_text_atomic(
        scores, "\n".join(pgs_catalog_header(len(score_rows), genome, seed) + [SCORING_COLUMNS] + score_rows) + "\n"
    )
    samples = out_dir / "samples.tsv"
    write_text_atomic(
        samples,
        "sample\tpopulation\trole\n"
        + "".join(f"{n}\t{p}\t{r}\n" for n, p, r in cohort_individuals(n_ref, n_target, seed)),
    )
    manifest = out_dir / "manifest.json"
    write_text_atomic(
        manifest,
        json.dumps(
            {
                "generator": "chromosched_pipeline.demo_data.simulate",
                "msprime": msprime.__version__,
                "genome": genome,
                "scale": scale,
                "seed": seed,
                "n_ref": n_ref,
                "n_target": n_target,
                "array_density": array_density,
                "missing_rate": missing_rate,
                "contig_style": contig_style,
                "target_contig_style": target_contig_style or contig_style,
                "target": str(target),
                "scores": str(scores),
                "samples": str(samples),
                "chromosomes": [f.as_json() for f in results],
            },
            indent=2,
        )
        + "\n",
    )
    return CohortFiles(out_dir, target, scores, samples, manifest, results)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m chromosched_pipeline.demo_data.simulate",
        description="Simulate a demo cohort (reference panel, array targets, truth, maps, PGS scoring file) with msprime.",
    )
    p.add_argument("--out", required=True, type=Path, help="output directory (e.g. resources/demo)")
    p.add_argument("--genome", default="GRCh37", help="genome build whose autosome lengths are scaled (default GRCh37)")
    p.add_argument("--scale", type=float, default=100.0, help="divide chromosome lengths by this (default 100)")
    p.add_argument("--chromosomes", nargs="+", default=None, help="chromosomes to simulate (default: all 22 autosomes)")
    p.add_argument("--n-ref", type=int, default=500, help="reference panel samples (default 500)")
    p.add_argument("--n-target", type=int, default=100, help="target samples (default 100)")
    p.add_argument(
        "--array-density", type=float, default=0.3, help="fraction of common panel SNPs on the array (default 0.3)"
    )
    p.add_argument("--missing-rate", type=float, default=0.01, help="fraction of missing target calls (default 0.01)")
    p.add_argument("--seed", type=int, default=1, help="master random seed (default 1)")
    p.add_argument(
        "--contig-style", choices=["chr", "plain"], default="chr", help="contig names in panel and map: chr1 or 1"
    )
    p.add_argument(
        "--target-contig-style",
        choices=["chr", "plain"],
        default=None,
        help="contig names in the target VCF (default: as --contig-style)",
    )
    p.add_argument(
        "--if-missing", action="store_true", help="do nothing when OUT/manifest.json exists with the same parameters"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    exit_on_sigterm()
    args = build_parser().parse_args(argv)
    manifest = args.out / "manifest.json"
    wanted = {
        "genome": args.genome,
        "scale": args.scale,
        "seed": args.seed,
        "n_ref": args.n_ref,
        "n_target": args.n_target,
        "array_density": args.array_density,
        "missing_rate": args.missing_rate,
    }
    if args.if_missing and manifest.exists():
        try:
            have = json.loads(manifest.read_text())
        except ValueError:
            have = {}
        order = list(genome_lengths(args.genome))
        chroms = sorted(dict.fromkeys(canonical_chrom(c) for c in (args.chromosomes or order)), key=order.index)
        if (
            all(have.get(k) == v for k, v in wanted.items())
            and [c["chrom"] for c in have.get("chromosomes", [])] == chroms
        ):
            print(f"simulate: {args.out} is up to date (manifest.json matches); nothing to do", file=sys.stderr)
            return 0
    started = time.perf_counter()

    def progress(msg: str) -> None:  # one line per chromosome; on a terminal above a progress bar
        bar.write(f"simulate: {msg}")
        bar.update(1)

    try:
        count = len(set(args.chromosomes)) if args.chromosomes else len(genome_lengths(args.genome))
        with ProgressBar(count, "simulating", unit="chrom") as bar:
            cohort = simulate_cohort(
                args.out,
                genome=args.genome,
                scale=args.scale,
                chromosomes=args.chromosomes,
                n_ref=args.n_ref,
                n_target=args.n_target,
                array_density=args.array_density,
                missing_rate=args.missing_rate,
                seed=args.seed,
                contig_style=args.contig_style,
                target_contig_style=args.target_contig_style,
                progress=progress,
            )
    except ChromoschedError as exc:
        print(f"simulate: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"simulate: wrote {len(cohort.chromosomes)} chromosomes to {args.out} in {time.perf_counter() - started:.1f} s "
        f"(target {cohort.target}, scores {cohort.scores})",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
