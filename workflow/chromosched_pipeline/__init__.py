"""The Python code the pipeline's rules call (VCF handling, Beagle, PRS, demo-data simulation).

The Snakefile puts ``workflow/`` on ``PYTHONPATH`` so rules can run ``python -m chromosched_pipeline.<module>``.
"""
