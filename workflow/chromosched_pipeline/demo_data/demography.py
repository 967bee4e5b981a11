"""The demo cohort's population model: a three-population out-of-Africa demography (Gutenkunst et al.
2009) plus a recently admixed group (Browning et al. 2011 style), for msprime."""

from __future__ import annotations

import math

import msprime

POPULATIONS: tuple[str, ...] = ("YRI", "CEU", "CHB", "ADMIX")
GENERATION_YEARS = 25


def out_of_africa_admixed_demography() -> msprime.Demography:
    """Three-population out-of-Africa model (Gutenkunst et al. 2009) plus a recent admixed group.

    Populations sampled at time 0: YRI, CEU, CHB, ADMIX. Times in generations (25 years each).
    """
    n_a, n_b, n_af = 7300, 2100, 12300
    n_eu0, n_as0 = 1000, 510
    r_eu, r_as = 0.004, 0.0055
    t_af = 220e3 / GENERATION_YEARS
    t_b = 140e3 / GENERATION_YEARS
    t_eu_as = 21.2e3 / GENERATION_YEARS
    n_eu = n_eu0 / math.exp(-r_eu * t_eu_as)
    n_as = n_as0 / math.exp(-r_as * t_eu_as)
    t_admix = 12

    d = msprime.Demography()
    d.add_population(name="YRI", description="Yoruba-like African", initial_size=n_af)
    d.add_population(name="CEU", description="European", initial_size=n_eu, growth_rate=r_eu)
    d.add_population(name="CHB", description="East Asian", initial_size=n_as, growth_rate=r_as)
    d.add_population(name="ADMIX", description="recently admixed", initial_size=30_000, growth_rate=0.05)
    d.add_population(name="OOA", description="out-of-Africa bottleneck", initial_size=n_b)
    d.add_population(name="AMH", description="anatomically modern humans", initial_size=n_af)
    d.add_population(name="ANC", description="ancestral", initial_size=n_a)
    d.set_symmetric_migration_rate(["YRI", "CEU"], 3e-5)
    d.set_symmetric_migration_rate(["YRI", "CHB"], 1.9e-5)
    d.set_symmetric_migration_rate(["CEU", "CHB"], 9.6e-5)
    d.add_admixture(time=t_admix, derived="ADMIX", ancestral=["YRI", "CEU", "CHB"], proportions=[1 / 6, 2 / 6, 3 / 6])
    d.add_population_split(time=t_eu_as, derived=["CEU", "CHB"], ancestral="OOA")
    d.add_symmetric_migration_rate_change(time=t_eu_as, populations=["YRI", "OOA"], rate=25e-5)
    d.add_population_split(time=t_b, derived=["YRI", "OOA"], ancestral="AMH")
    d.add_population_split(time=t_af, derived=["AMH"], ancestral="ANC")
    d.sort_events()
    return d
