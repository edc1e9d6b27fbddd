"""pfslogg: stellar surface gravity (log g) from PFS-like spectra, as a reproducible paper.

The library holds all science and logic; Snakemake rules and scripts only call it.
Modules
-------
errors      one exception type for bad input, with the offending file/key in the message
atomic      write-to-temp-then-rename helpers
gridio      the HDF5 grid file shared by every grid source (synth, BOSZ 2017, BOSZ 2024)
synth       the embedded physics-based forward model (default grid source)
bosz        readers of the real BOSZ 2017 / 2024 files
instrument  PFS red-arm medium-resolution convolution and resampling
noise       exposure-time / noise model
interp      cubic (C1) or multilinear interpolation of the instrument grid (NumPy and differentiable torch)
dataset     data-set generation and the pfsspec ``dataset.h5`` layout
evaluation  R^2, MAE, RMSE, bootstrap intervals, per-SNR-bin metrics
estimators  one scikit-learn-style interface for every log g estimator
fisher      Fisher / Cramer-Rao ceilings and per-pixel Fisher maps
provenance  provenance blocks for results JSON
audit       the provenance audit: a number back to its rule, inputs and commit
threads     thread limits of the numerical libraries
allocator   the process's memory allocator set for repeated large arrays (freed blocks reused, no page zeroing)
"""

__version__ = "0.1.0"

# Parameter names, in the order used by every grid and data set (pfsspec column names).
PARAMS = ("T_eff", "log_g", "M_H", "a_M")
