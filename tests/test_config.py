"""Config schema validation (defaults, readable errors) and the start-up input checks."""

from __future__ import annotations

import pytest
from conftest import REPO, pipeline_config

from chromosched.errors import ChromoschedError
from chromosched_pipeline.config import load_config_file, load_pipeline_config, validate_config

SCHEMA = REPO / "config" / "schema" / "config.schema.yaml"


def test_shipped_config_is_valid_and_gets_defaults():
    config = load_config_file(REPO / "config" / "config.yaml")
    pc = load_pipeline_config(config, SCHEMA, check_files=False)
    assert len(pc.chromosomes) == 22 and pc.panel("chr7") == "resources/demo/panel/chr7.vcf.gz"
    assert pc.beagle_arguments().startswith("--window 40.0 --overlap 2.0 --burnin 3 --iterations 12")


def test_defaults_are_filled(tiny_cohort):
    config = pipeline_config(tiny_cohort)
    validate_config(config, SCHEMA)
    assert config["beagle"]["ne"] == 100000 and config["threads"]["impute"] == 1
    assert config["prs"]["min_match_rate"] == 0.75 and config["target"]["samples"] is None


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: c["beagle"].update(window=-5), "cfg: beagle.window: -5 is less than or equal to the minimum of 0"),
        (lambda c: c.pop("prs"), "cfg: (top level): 'prs' is a required property"),
        (lambda c: c.update(chromosomes=[]), "cfg: chromosomes: [] should be non-empty"),
        (lambda c: c.update(colour="red"), "cfg: (top level): unknown key(s) ('colour' was unexpected)"),
        (lambda c: c["prs"].update(min_match_rate=2), "cfg: prs.min_match_rate: 2 is greater than the maximum of 1"),
        (lambda c: c["threads"].update(impute="four"), "cfg: threads.impute: 'four' is not of type 'integer'"),
    ],
)
def test_schema_rejects_bad_config_with_one_readable_line(tiny_cohort, change, expected):
    config = pipeline_config(tiny_cohort, beagle={}, threads={})
    change(config)
    with pytest.raises(ChromoschedError) as err:
        validate_config(config, SCHEMA, source="cfg")
    assert str(err.value) == expected


def test_overlap_must_be_below_half_the_window(tiny_cohort):
    with pytest.raises(ChromoschedError, match="beagle.overlap \\(10 cM\\) must be less than half"):
        load_pipeline_config(pipeline_config(tiny_cohort, beagle={"window": 15, "overlap": 10}), SCHEMA)


def test_start_up_checks_pass_and_count_samples(tiny_cohort):
    pc = load_pipeline_config(pipeline_config(tiny_cohort), SCHEMA)
    assert pc.chromosomes == ["chr21", "chr22"] and pc.target_samples == 50


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(chromosomes=["chr21", "21"]), "chromosomes: 21 and chr21 are the same chromosome"),
        (dict(chromosomes=["chr20"]), "chromosomes: chr20 is not in the reference panel"),
        (
            dict(prs={"scoring_file": "/nonexistent/scores.txt"}),
            "prs.scoring_file /nonexistent/scores.txt: file not found",
        ),
        (dict(truth="/nonexistent/{chrom}.vcf.gz"), "truth /nonexistent/chr21.vcf.gz: file not found"),
        (
            dict(diffusion={"enabled": True, "chromosomes": ["chr20"]}),
            "diffusion.chromosomes: chr20 is not in chromosomes",
        ),
        (
            dict(diffusion={"enabled": True, "checkpoint": "/nonexistent/model.pt"}),
            "diffusion.checkpoint /nonexistent/model.pt: file not found",
        ),
    ],
)
def test_start_up_checks_fail_with_one_line(tiny_cohort, changes, message):
    with pytest.raises(ChromoschedError) as err:
        load_pipeline_config(pipeline_config(tiny_cohort, **changes), SCHEMA, source="cfg")
    assert message in str(err.value) and str(err.value).startswith("cfg: ")


def test_single_panel_file_missing_a_chromosome(tiny_cohort):
    # One panel file for all chromosomes that lacks chr22: the index tells, no data is read.
    panel21 = str(tiny_cohort.out_dir / "panel" / "chr21.vcf.gz")
    config = pipeline_config(tiny_cohort)
    config["reference"]["panel"] = panel21
    with pytest.raises(ChromoschedError, match=f"chr22 is not in the reference panel {panel21} \\(it has: chr21\\)"):
        load_pipeline_config(config, SCHEMA)


def test_map_for_the_wrong_chromosome(tiny_cohort, tmp_path):
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / "chr21.map").write_text((tiny_cohort.out_dir / "map" / "chr21.map").read_text())
    (maps / "chr22.map").write_text((tiny_cohort.out_dir / "map" / "chr21.map").read_text())  # wrong content
    config = pipeline_config(tiny_cohort)
    config["reference"]["map"] = str(maps / "{chrom}.map")
    with pytest.raises(ChromoschedError, match="chr22.map: is for chromosome chr21, not chr22"):
        load_pipeline_config(config, SCHEMA)
    # one whole-genome map file (no {chrom}) is checked per chromosome by prepare, not at start
    config["reference"]["map"] = str(maps / "chr21.map")
    load_pipeline_config(config, SCHEMA)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("target: [unclosed\n")
    with pytest.raises(ChromoschedError, match="not valid YAML"):
        load_config_file(path)
