"""Size features any workflow has, for predicting a job's memory without knowing the tool.

- **chromosome length** (Mbp) from the genome build, recognised from the *value* of any wildcard
  (``chr7``, ``7``, ``chrX``), whatever the wildcard is called: per-chromosome workflows name
  their wildcard ``chrom``, ``contig``, ``region``, ``seq`` ... Wildcards with a usual chromosome
  name win when several values look like chromosomes.
- **input size** (MB): the sum of the job's input files, as Snakemake reports them.

Which one predicts a rule's memory is chosen per rule by leave-one-out error
(:meth:`chromosched.dynamic.policy.DynamicPolicy.chosen_feature`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..genomes import GENOMES, genome_lengths

#: Wildcard names that usually carry a chromosome: preferred when several values look like one.
CHROMOSOME_NAMES = ("chrom", "chromosome", "chr", "contig", "seq", "seqname", "region")
_CHROM_VALUE = re.compile(r"(?i)^(?:chr)?([0-9]{1,2}|x|y)$")
# Sex chromosomes (bp); the autosomes come from chromosched.genomes.
_SEX = {
    "GRCh37": {"chrX": 155270560, "chrY": 59373566},
    "GRCh38": {"chrX": 156040895, "chrY": 57227415},
}


def chromosome_lengths(build: str, sex: bool = True) -> dict[str, int]:
    """Lengths (bp) of chr1..chr22 (and chrX, chrY with ``sex``) of a built-in build (GRCh37 when
    ``build`` is not one, e.g. an ordering-table path)."""
    name = build if build in GENOMES else "GRCh37"
    lengths = genome_lengths(name)
    if sex:
        lengths.update(_SEX[name])
    return lengths


def chromosome_in(wildcards: Mapping[str, object], lengths: Mapping[str, int]) -> str | None:
    """The chromosome (``chr7``) a job's wildcard values name, if any value is one of ``lengths``."""
    found = []
    for name, value in wildcards.items():
        m = _CHROM_VALUE.match(str(value).strip())
        if m is None:
            continue
        chrom = "chr" + m.group(1).upper()
        if chrom in lengths:
            found.append((0 if str(name).lower() in CHROMOSOME_NAMES else 1, chrom))
    return min(found)[1] if found else None


def length_mbp(wildcards: Mapping[str, object], lengths: Mapping[str, int]) -> float | None:
    chrom = chromosome_in(wildcards, lengths)
    return None if chrom is None else lengths[chrom] / 1e6
