"""Imputation: per-chromosome preparation, the Beagle wrapper (heap, OOM classification),
accuracy against a truth VCF, and the profiling of Beagle's minimum heap."""
