"""Shared test setup: the pipeline's Python package lives in workflow/ and is put on the path here
(the Snakefile does the same for the rules)."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = REPO / "workflow"
if str(WORKFLOW_DIR) not in sys.path:
    sys.path.insert(0, str(WORKFLOW_DIR))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(WORKFLOW_DIR), os.environ.get("PYTHONPATH", "")) if p
)
