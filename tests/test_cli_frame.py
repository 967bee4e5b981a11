import subprocess
import sys

import pytest

from chromosched.cli import main
from chromosched.errors import ChromoschedError
from chromosched.genomes import canonical_chrom, genome_lengths


def test_unknown_command_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "invalid choice" in err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "chromosched", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("chromosched ")


def test_genome_lengths_and_names():
    grch37 = genome_lengths("GRCh37")
    assert list(grch37)[:2] == ["chr1", "chr2"] and len(grch37) == 22
    assert grch37["chr1"] == 249250621 and grch37["chr22"] == 51304566
    assert genome_lengths("hg38")["chr1"] == 248956422
    assert canonical_chrom("1") == canonical_chrom("chr1") == "chr1"
    with pytest.raises(ChromoschedError, match="unknown genome 'GRCh99'"):
        genome_lengths("GRCh99")
