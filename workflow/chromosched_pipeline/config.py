"""The pipeline's configuration: JSON-schema validation with defaults, and the start-up checks.

:func:`load_pipeline_config` is what the Snakefile calls on start. It validates ``config`` against
``config/schema/config.schema.yaml`` (filling defaults), then checks the inputs exist and fit
together: every configured chromosome must be in the target VCF, the reference panel and the
genetic map. Any problem raises :class:`~chromosched.errors.ChromoschedError` with one line naming
the key or file and the problem, e.g.::

    config/config.yaml: chromosomes: chr23 is not in the reference panel resources/demo/panel/chr23.vcf.gz (file not found)
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from chromosched.errors import ChromoschedError

from .vcfio import indexed_contigs, match_contig, vcf_contigs

CHROM_PLACEHOLDER = "{chrom}"


def _with_defaults(validator_class):
    """A validator that also fills ``default`` values (objects first, so nested defaults apply)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    default = sub["default"]
                    instance[name] = dict(default) if isinstance(default, dict) else default
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _error_path(error: jsonschema.ValidationError) -> str:
    parts = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p)))
    return "".join(parts) or "(top level)"


def validate_config(config: dict, schema_path: str | os.PathLike, source: str = "config") -> dict:
    """Validate ``config`` in place against the YAML JSON schema, filling defaults.

    Raises a one-line ChromoschedError naming the key and the problem (the most relevant error
    when there are several).
    """
    try:
        schema = yaml.safe_load(Path(schema_path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ChromoschedError(f"config schema {schema_path}: cannot read ({exc})") from None
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        message = best.message
        if best.validator == "additionalProperties":
            message = message.replace("Additional properties are not allowed", "unknown key(s)")
        raise ChromoschedError(f"{source}: {_error_path(best)}: {message}")
    return config


def _resolve(pattern: str, chrom: str) -> str:
    return pattern.replace(CHROM_PLACEHOLDER, chrom)


@dataclass
class PipelineConfig:
    """The validated configuration plus per-chromosome path resolution used by the rules."""

    raw: dict
    source: str = "config"
    chromosomes: list[str] = field(default_factory=list)
    target_samples: int | None = None

    # --- paths per chromosome (also usable as Snakemake input functions: they accept wildcards) ---
    def _chrom(self, chrom_or_wildcards: Any) -> str:
        return chrom_or_wildcards if isinstance(chrom_or_wildcards, str) else chrom_or_wildcards.chrom

    def target_vcf(self, chrom: Any) -> str:
        return _resolve(self.raw["target"]["vcf"], self._chrom(chrom))

    def target_index(self, chrom: Any) -> list[str]:
        """The target's index as a list (empty when unindexed: prepare then scans the file)."""
        return _existing_index(self.target_vcf(chrom))

    def panel(self, chrom: Any) -> str:
        return _resolve(self.raw["reference"]["panel"], self._chrom(chrom))

    def panel_index(self, chrom: Any) -> str:
        found = _existing_index(self.panel(chrom))
        return found[0] if found else self.panel(chrom) + ".tbi"

    def genetic_map(self, chrom: Any) -> str:
        return _resolve(self.raw["reference"]["map"], self._chrom(chrom))

    def truth(self, chrom: Any) -> str | None:
        pattern = self.raw.get("truth")
        return _resolve(pattern, self._chrom(chrom)) if pattern else None

    @property
    def samples_file(self) -> str | None:
        return self.raw["target"].get("samples")

    @property
    def scoring_file(self) -> str:
        return self.raw["prs"]["scoring_file"]

    @property
    def min_match_rate(self) -> float:
        return float(self.raw["prs"]["min_match_rate"])

    @property
    def memory_budget_mb(self) -> int:
        return int(self.raw["memory_budget_mb"])

    @property
    def sample_groups(self) -> str | None:
        return self.raw["report"].get("sample_groups")

    def threads(self, rule: str) -> int:
        return int(self.raw["threads"].get(rule, 1))

    @property
    def beagle(self) -> dict:
        return self.raw["beagle"]

    def beagle_arguments(self) -> str:
        """Command-line flags for ``python -m chromosched_pipeline.imputation.beagle`` (Beagle parameters)."""
        args = []
        for key in ("window", "overlap", "burnin", "iterations", "ne", "seed"):
            value = self.beagle.get(key)
            if value is not None:
                args += [f"--{key}", str(value)]
        if self.beagle.get("jar"):
            args += ["--jar", str(self.beagle["jar"])]
        return shlex.join(args)


def _existing_index(vcf: str) -> list[str]:
    for suffix in (".tbi", ".csi"):
        if os.path.exists(vcf + suffix):
            return [vcf + suffix]
    return []


def load_pipeline_config(
    config: dict,
    schema_path: str | os.PathLike,
    source: str = "config",
    check_files: bool = True,
) -> PipelineConfig:
    """Validate ``config`` (in place, defaults filled) and check that its inputs exist and agree.

    Checks, each failing with a one-line error: the target VCF, panel and map exist for every
    chromosome; bgzipped VCFs are complete (BGZF end-of-file block present); each chromosome is
    present in the target, the panel (``chr1`` and ``1`` are the same chromosome) and the map's
    file; the scoring file and optional sample list exist.
    """
    validate_config(config, schema_path, source)
    chroms = [str(c) for c in config["chromosomes"]]
    from chromosched.genomes import canonical_chrom

    seen: dict[str, str] = {}
    for chrom in chroms:
        key = canonical_chrom(chrom)
        if key in seen:
            raise ChromoschedError(f"{source}: chromosomes: {chrom} and {seen[key]} are the same chromosome")
        seen[key] = chrom
    beagle = config["beagle"]
    if (
        beagle.get("window") is not None
        and beagle.get("overlap") is not None
        and beagle["overlap"] >= beagle["window"] / 2
    ):
        raise ChromoschedError(
            f"{source}: beagle.overlap ({beagle['overlap']} cM) must be less than half of beagle.window ({beagle['window']} cM)"
        )
    diffusion = config.get("diffusion") or {}
    if diffusion.get("enabled"):
        unknown = [str(c) for c in diffusion.get("chromosomes") or () if str(c) not in chroms]
        if unknown:
            raise ChromoschedError(f"{source}: diffusion.chromosomes: {unknown[0]} is not in chromosomes")
    pc = PipelineConfig(raw=config, source=source, chromosomes=chroms)
    if check_files:
        _check_inputs(pc)
    return pc


def _check_inputs(pc: PipelineConfig) -> None:
    """The start-up checks, one per kind of input (chromosched_pipeline.input_checks), in the
    order a user fixes them: scoring file, VCF headers and sample IDs, contigs, maps."""
    from . import input_checks as checks

    src = pc.source

    def named(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except ChromoschedError as exc:
            raise ChromoschedError(f"{src}: {exc}") from None

    named(checks.check_scoring_file, pc.scoring_file)
    if (pc.raw.get("diffusion") or {}).get("enabled"):
        named(checks.check_file, pc.raw["diffusion"]["checkpoint"], "diffusion.checkpoint")
    if pc.sample_groups:
        named(checks.check_sample_groups, pc.sample_groups)
    checked: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}  # VCF path -> its sample IDs

    def contigs_of(path: str, what: str) -> list[str]:
        if path not in checked:
            header = named(checks.check_vcf_header, path, what)
            samples[path] = header.samples
            checked[path] = named(vcf_contigs, path, header.lines)
        return checked[path]

    for chrom in pc.chromosomes:
        panel = pc.panel(chrom)
        if not Path(panel).is_file():
            hint = "; run `make demo` to generate the demo data" if "resources/demo/" in panel else ""
            raise ChromoschedError(
                f"{src}: chromosomes: {chrom} is not in the reference panel {panel} (file not found{hint})"
            )
        if not _existing_index(panel):
            raise ChromoschedError(f"{src}: reference.panel {panel}: no .tbi or .csi index (run: tabix -p vcf {panel})")
        panel_contigs = contigs_of(panel, "reference.panel")
        if match_contig(chrom, panel_contigs) is None:
            raise ChromoschedError(
                f"{src}: chromosomes: {chrom} is not in the reference panel {panel} (it has: {_preview(panel_contigs)})"
            )
        genetic_map = pc.genetic_map(chrom)
        first = named(checks.check_genetic_map, genetic_map)
        if CHROM_PLACEHOLDER in pc.raw["reference"]["map"] and match_contig(chrom, [first]) is None:
            # One map per chromosome: its first line must be that chromosome (whole-genome maps
            # are checked by the prepare step, which reads them anyway).
            raise ChromoschedError(f"{src}: reference.map {genetic_map}: is for chromosome {first}, not {chrom}")
        target = pc.target_vcf(chrom)
        named(checks.check_file, target, "target.vcf")
        target_contigs = contigs_of(target, "target.vcf")
        if not target_contigs:
            raise ChromoschedError(f"{src}: target.vcf {target}: no variant records (empty VCF)")
        if indexed_contigs(target) is not None and match_contig(chrom, target_contigs) is None:
            raise ChromoschedError(
                f"{src}: chromosomes: {chrom} has no records in target.vcf {target} (it has: {_preview(target_contigs)})"
            )
        truth = pc.truth(chrom)
        if truth:
            named(checks.check_file, truth, "truth")
    first_target = pc.target_vcf(pc.chromosomes[0])
    if pc.samples_file:
        named(checks.check_sample_list, pc.samples_file, samples[first_target], first_target)
    pc.target_samples = len(samples[first_target])


def _preview(names: Sequence[str], limit: int = 6) -> str:
    names = list(names)
    if not names:
        return "none"
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def load_config_file(path: str | os.PathLike) -> dict:
    """Read a YAML config file (used by tests and tools outside Snakemake)."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ChromoschedError(f"config file {path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ChromoschedError(f"config file {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, Mapping):
        raise ChromoschedError(f"config file {path}: must be a mapping of keys to values")
    return dict(data)
