"""The simulated demo cohort (msprime), never downloaded."""
