"""chromosched: memory-aware chromosome-parallel scheduling.

Plain algorithms with no Snakemake import; the Snakemake adapter lives in
``snakemake_scheduler_plugin_chromosched``.
"""

__version__ = "0.1.0"
