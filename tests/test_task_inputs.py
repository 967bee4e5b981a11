"""Task inputs: built-in genomes, .fai, VCF header (plain and bgzipped), TSV, Snakemake benchmarks."""

import subprocess
import sys
import textwrap

import pysam
import pytest

from chromosched.errors import ChromoschedError
from chromosched.static.task_inputs import chromosome_from_filename, load_tasks, read_benchmarks, read_lengths

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _vcf_text():
    contigs = "".join(
        f"##contig=<ID={c},length={n},assembly=test>\n" for c, n in (("1", 3000), ("2", 2000), ("X", 5000), ("3", 1000))
    )
    return (
        "##fileformat=VCFv4.2\n" + contigs + '##INFO=<ID=AF,Number=A,Type=Float,Description="freq">\n'
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        "1\t100\t.\tA\tG\t.\tPASS\tAF=0.1\n"
    )


def test_builtin_genome_and_alias():
    ts = load_tasks(genome="hg19")
    assert ts.names[0] == "chr1" and len(ts) == 22 and ts.memory == ts.duration
    assert ts.memory[0] == 249.250621 and ts.memory_unit == "Mbp"
    sub = load_tasks(genome="GRCh38", chromosomes=["21", "chr22"])
    assert sub.names == ("chr21", "chr22")
    with pytest.raises(ChromoschedError, match="unknown genome 'GRCh99'"):
        load_tasks(genome="GRCh99")


def test_fai_keeps_autosomes(tmp_path):
    fai = tmp_path / "ref.fa.fai"
    fai.write_text(
        "chr1\t3000\t6\t60\t61\nchr2\t2000\t3100\t60\t61\nchrX\t5000\t5200\t60\t61\n"
        "chr1_KI270706v1_random\t175055\t9999\t60\t61\n"
    )
    ts = load_tasks(lengths=fai)
    assert ts.names == ("chr1", "chr2") and ts.memory == (0.003, 0.002)
    assert load_tasks(lengths=fai, chromosomes=["chrX", "chr1"]).names == ("chrX", "chr1")


@pytest.mark.parametrize("compressed", [False, True])
def test_vcf_header_contigs(tmp_path, compressed):
    vcf = tmp_path / "calls.vcf"
    vcf.write_text(_vcf_text())
    if compressed:
        pysam.tabix_compress(str(vcf), str(vcf) + ".gz")
        vcf = tmp_path / "calls.vcf.gz"
        assert vcf.read_bytes()[:2] == b"\x1f\x8b"
    assert read_lengths(vcf) == {"chr1": 3000, "chr2": 2000, "chrX": 5000, "chr3": 1000}
    assert load_tasks(lengths=vcf).names == ("chr1", "chr2", "chr3")


def test_two_column_tsv_with_header_and_no_autosomes(tmp_path):
    tsv = tmp_path / "lengths.tsv"
    tsv.write_text("name\tlength\ncontigA\t500000\ncontigB\t250000\n")
    ts = load_tasks(lengths=tsv)
    assert ts.names == ("contigA", "contigB") and ts.memory == (0.5, 0.25)


def test_length_file_errors(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("chr1\t100\nchr2\tlots\n")
    with pytest.raises(ChromoschedError, match=r"bad.tsv line 2: length of chr2 is not an integer"):
        load_tasks(lengths=bad)
    dup = tmp_path / "dup.fai"
    dup.write_text("chr1\t100\t0\t60\t61\n1\t100\t0\t60\t61\n")
    with pytest.raises(ChromoschedError, match=r"dup.fai line 2: contig 1 appears twice \(first on line 1\)"):
        load_tasks(lengths=dup)
    novcf = tmp_path / "empty.vcf"
    novcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    with pytest.raises(ChromoschedError, match="no ##contig lines"):
        load_tasks(lengths=novcf)
    with pytest.raises(ChromoschedError, match="missing.fai: no such file"):
        load_tasks(lengths=tmp_path / "missing.fai")
    with pytest.raises(ChromoschedError, match="either --genome or --lengths"):
        load_tasks(genome="GRCh38", lengths=bad)


def test_chromosome_from_benchmark_file_name(tmp_path):
    assert chromosome_from_filename(tmp_path / "chr7.tsv") == "chr7"
    assert chromosome_from_filename(tmp_path / "impute_beagle5_chr12.tsv") == "chr12"
    assert chromosome_from_filename(tmp_path / "impute.3.tsv") == "chr3"
    assert chromosome_from_filename(tmp_path / "chrX.tsv") == "chrX"
    assert chromosome_from_filename(tmp_path / "summary.tsv") is None


def test_benchmark_files_hand_written(tmp_path):
    for chrom, rows in (("chr1", ["10.0\t0:00:10\t900.5", "14.0\t0:00:14\t1000.0"]), ("chr2", ["5.0\t0:00:05\t400.0"])):
        (tmp_path / f"{chrom}.tsv").write_text(BENCH_HEADER + "".join(r + "\t1\t1\t1\t0\t0\t1.0\t1.0\n" for r in rows))
    ts = load_tasks(benchmarks=[tmp_path])
    assert ts.names == ("chr1", "chr2") and ts.memory_unit == "MB" and ts.duration_unit == "s"
    assert ts.memory == (1000.0, 400.0)  # largest max_rss over repeats
    assert ts.duration == (12.0, 5.0)  # mean runtime over repeats
    with pytest.raises(ChromoschedError, match="no benchmark for chr3"):
        load_tasks(genome="GRCh38", benchmarks=[tmp_path], chromosomes=["chr1", "chr2", "chr3"])
    (tmp_path / "chr3.tsv").write_text(BENCH_HEADER + "3.0\t0:00:03\tNA\tNA\tNA\tNA\tNA\tNA\tNA\tNA\n")
    with pytest.raises(ChromoschedError, match=r"chr3.tsv line 2: max_rss is NA"):
        read_benchmarks([tmp_path])
    (tmp_path / "chr3.tsv").write_text(BENCH_HEADER + "3.0\t0:00:03\t12\n")
    with pytest.raises(ChromoschedError, match=r"chr3.tsv line 2: expected 10 columns, got 3"):
        read_benchmarks([tmp_path])
    (tmp_path / "chr3.tsv").write_text("a\tb\n1\t2\n")
    with pytest.raises(ChromoschedError, match="not a Snakemake benchmark file"):
        read_benchmarks([tmp_path])


def test_benchmarks_from_a_real_snakemake_run(tmp_path):
    """Snakemake's own `benchmark:` files: a job per chromosome holding 20, 60 and 120 MB."""
    (tmp_path / "Snakefile").write_text(
        textwrap.dedent(f"""
        MB = {{"chr1": 120, "chr2": 60, "chr3": 20}}
        rule all:
            input: expand("out/{{c}}.done", c=MB)
        rule work:
            output: "out/{{c}}.done"
            benchmark: "benchmarks/work/{{c}}.tsv"
            params: mb=lambda wc: MB[wc.c]
            shell: "{sys.executable} -c 'import time; b = bytearray({{params.mb}} * 2**20); time.sleep(1.6)' && touch {{output}}"
    """)
    )
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "3", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    ts = load_tasks(benchmarks=[tmp_path / "benchmarks"])
    assert ts.names == ("chr1", "chr2", "chr3")
    assert ts.memory[0] > ts.memory[1] > ts.memory[2] > 0  # max_rss follows the allocation
    assert ts.memory[0] >= 120
    assert all(d >= 1.5 for d in ts.duration)
