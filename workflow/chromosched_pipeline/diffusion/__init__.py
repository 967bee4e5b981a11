"""3D-genome diffusion stage: ChromoGen-family conditional DDIM sampling of 64-bead distance maps,
seam-coherent tiling along a chromosome, whole-chromosome coordinates, memory-scaled chunking.

Modules: polymer (training data / ground truth), representation (normaliser, origami fold),
schedule, model (U-Net), sampler (DDIM + guidance), tiling (windows, seams), coordinates,
metrics, memory (peak = a + b x rows, chunk choice), checkpoint (our format and ChromoGen's),
train, and ``__main__`` (the command line the rules call). See docs/diffusion.md.
"""
