"""Simulation of dynamic scheduling: the synthetic workload, the event simulator, the baselines
(clairvoyant, Sizey-like, declared memory), the CP-SAT optimum and side-by-side comparisons."""
