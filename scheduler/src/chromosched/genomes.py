"""Built-in autosome lengths (bp) of the human reference builds.

GRCh37 values are the UCSC hg19 / 1000 Genomes lengths; GRCh38 the GRC primary assembly lengths.
"""

from __future__ import annotations

from .errors import ChromoschedError

AUTOSOMES: tuple[str, ...] = tuple(f"chr{i}" for i in range(1, 23))

_GRCH37 = (
    249250621,
    243199373,
    198022430,
    191154276,
    180915260,
    171115067,
    159138663,
    146364022,
    141213431,
    135534747,
    135006516,
    133851895,
    115169878,
    107349540,
    102531392,
    90354753,
    81195210,
    78077248,
    59128983,
    63025520,
    48129895,
    51304566,
)
_GRCH38 = (
    248956422,
    242193529,
    198295559,
    190214555,
    181538259,
    170805979,
    159345973,
    145138636,
    138394717,
    133797422,
    135086622,
    133275309,
    114364328,
    107043718,
    101991189,
    90338345,
    83257441,
    80373285,
    58617616,
    64444167,
    46709983,
    50818468,
)

GENOMES: dict[str, dict[str, int]] = {
    "GRCh37": dict(zip(AUTOSOMES, _GRCH37)),
    "GRCh38": dict(zip(AUTOSOMES, _GRCH38)),
}
ALIASES = {"hg19": "GRCh37", "b37": "GRCh37", "hg38": "GRCh38"}


def genome_lengths(name: str) -> dict[str, int]:
    """Autosome lengths in bp for a built-in genome build, in chr1..chr22 order."""
    key = ALIASES.get(name, name)
    if key not in GENOMES:
        known = ", ".join(sorted(GENOMES) + sorted(ALIASES))
        raise ChromoschedError(f"unknown genome '{name}' (known: {known}; or give a .fai, VCF or TSV file)")
    return dict(GENOMES[key])


def canonical_chrom(name: str) -> str:
    """Normalise a contig name to the ``chrN`` form (``1`` and ``chr1`` both give ``chr1``)."""
    name = str(name).strip()
    if name.lower().startswith("chr"):
        return "chr" + name[3:]
    return "chr" + name
