"""The embedded physics-based forward model: the default raw-grid source (``grid.source: synth``).

It is not a model atmosphere code. It is a *one-layer* (Schuster-Schwarzschild / Milne-Eddington
style) line-formation model with real atomic physics, built so that the spectra of the Ca II
triplet window (7000-9000 A, air) carry the real parameter sensitivities -- signs, rough sizes and
degeneracies -- of Teff, log g, [M/H] and [alpha/M]. It is smooth in its parameters and exists in
two implementations of the same equations: NumPy (fast, ``scipy.special.wofz``; writes the grid)
and PyTorch (differentiable with autograd; exact Jacobians for the Cramer-Rao bounds).

Units: wavelength in Angstrom (air), temperature in K, pressure in dyn cm^-2, number densities in
cm^-3, damping constants in rad s^-1, energies in eV, flux F_lambda in erg s^-1 cm^-2 A^-1.

1. The line-forming layer
-------------------------
All lines form in one layer at continuum optical depth ``tau_layer`` (default 0.3), whose
temperature follows the grey Eddington relation (Gray, *The Observation and Analysis of Stellar
Photospheres*, 3rd ed., Eq. 9.30): T^4 = 3/4 Teff^4 (tau + 2/3), i.e. T = 0.928 Teff; theta = 5040/T.

Electron and gas pressure come from hydrostatic equilibrium, P_g = g_eff tau_layer / kappa, with the
continuous opacity kappa = f_HI (K_H-(T) P_e + sigma_Rayleigh) per H nucleus (H^- is proportional
to P_e), and Saha ionisation (Gray Eq. 1.20, Phi(T) = 1.2020e9 (u1/u0) theta^-5/2 10^(-theta I),
three stages) of the electron donors H, Na, Mg, Al, Si, K, Ca, Ti, Cr, Fe:

    P_e = P_g E(P_e) / (1 + A_He + E(P_e)),    E = sum_X A_X (f_X,II + 2 f_X,III)  (electrons per H),

solved for ln P_e by 20 Newton steps (converged to ~1e-14; smooth and differentiable). Where the
donors are mostly neutral this is Gray's textbook scaling (ch. 9) P_e ~ g^(1/3) A_metal^(1/3),
P_g ~ g^(2/3) A_metal^(-1/3); where they are fully ionised it tends to P_e ~ P_g ~ g^(1/2);
hydrogen takes over as donor above ~6500 K; Rayleigh scattering by H (Gray Eq. 8.16) bounds the
opacity of the coolest giants. Sun (5777 K, 4.44): log P_e = 0.71, log P_g = 4.67 at the layer.

The ``gravity_coupling`` knob (gamma) enters only here, through the effective gravity
    log g_eff = logg_pivot + gamma (log g - logg_pivot)      (logg_pivot = 3.0),
so every pressure exponent is multiplied by gamma (P_g ~ g^(2 gamma/3), P_e ~ g^(gamma/3)), and so
is every g-dependent line strength and wing and the O I NLTE term below: d(spectrum)/d log g =
gamma x (the gamma = 1 response at log g_eff). gamma = 1 is the physical model; gamma > 1 gives
more information on log g, gamma < 1 less. Teff, [M/H] and [alpha/M] responses are unchanged.

2. Continuum
------------
H^- bound-free (cross-section polynomial of Gray Eq. 8.11, John 1988) plus a small free-free
term (5 % of bound-free at 8000 A, growing as lambda^2), per neutral H atom:
kappa_c(lambda) = f_HI (4.158e-10 alpha(lambda) theta^5/2 10^(0.754 theta) P_e + sigma_R(lambda)).
The continuum flux is Eddington-Barbier: F_lambda = pi B_lambda(T_c(lambda)), with T_c from the
Eddington T(tau) at tau_lambda = 2/3 in the wavelength's own H^- opacity,
T_c^4 = 3/4 Teff^4 (2/3 alpha(8000 A)/alpha(lambda) + 2/3): a Planck function with a gentle
H^- slope, depending on Teff only.

3. Line strength (integrated optical depth S, in A)
---------------------------------------------------
For a line of species X, ionisation stage i, lower-level excitation chi, oscillator strength gf:

    S = k_f (pi e^2 / m_e c^2) lambda^2 gf A_X 10^([X/H]) f_X,i(T, P_e) 10^(-theta chi) / u_X,i
        / kappa_c(lambda)

(Gray ch. 13-14 weak-line analysis; k_f = ``line_formation_factor`` = 0.2 converts the line-to-
continuum opacity ratio into the depth of a weak line, set with the Sun's Ca II, Mg I, Na I, Fe I
equivalent widths). [X/H] = [M/H] + [alpha/M] for the alpha elements O, Mg, Si, Ca, Ti, else
[M/H]. Abundances: Asplund et al. 2009, ARA&A 47, 481. Partition functions: constants near 5000 K
(Gray Appendix D). This gives the textbook pressure dependences (Gray ch. 13): neutral lines of
mostly-ionised elements (Fe I, Na I, K I, Mg I, Cr I, Si I) are insensitive to g; lines of majority
species (Ca II, Fe II, O I, and Ti I in the coolest stars) scale as 1/P_e ~ g^(-1/3); the Saha and
Boltzmann factors make Teff and [M/H] partly degenerate (a hotter star has weaker neutral lines,
like a metal-poorer one).

O I 777 nm NLTE (Kiselman 1993, A&A 275, 269; Takeda 2003, A&A 402, 343): the LTE strength is
multiplied by 10^Delta, Delta = (Teff/6000) [0.10 + 0.12 (4.5 - log g_eff)] dex: a stronger NLTE
strengthening in hotter and lower-gravity stars (the O I luminosity effect).

4. Line profile and line formation
----------------------------------
tau(lambda) = S H(a, v) / (sqrt(pi) Delta_D), v = (lambda - lambda0) / Delta_D, a = Gamma / Delta_D,
H(a, v) = Re w(v + i a) (Faddeeva function; NumPy: ``scipy.special.wofz``; torch: Weideman 1994,
N = 32, see :func:`faddeeva_torch`). int tau d lambda = S, so a weak line has W = D_max S.

* Doppler width Delta_D = lambda0/c sqrt(2kT/m + xi^2 + v_inst^2): thermal + microturbulence
  (xi = 2 km/s) + the instrumental Gaussian of the raw grid's resolution R, v_inst = c/(2 sqrt(ln 2) R):
  a Gaussian convolved with a Voigt is a Voigt with the Gaussian widths added in quadrature, so
  the instrument is folded into the profile instead of convolving the spectrum.
* Lorentz half width Gamma = (gamma_rad + gamma_6 + gamma_4) lambda0^2 / (4 pi c): radiative
  (given per strong line, 10^8 s^-1 for the weak lines); van der Waals from Unsoeld's hydrogenic
  C6 (Unsoeld 1955; Gray Eq. 11.29-11.35): C6 = 0.3e-30 Z^2 [(I - chi_u)^-2 - (I - chi)^-2],
  log gamma_6 = 19.6 + 0.4 log C6 + log P_g - 0.7 log T, times ``vdw_enhancement`` = 1.5 (the usual
  1.5-2.5 correction to Unsoeld); quadratic Stark (Gray Eq. 11.26-11.27)
  log gamma_4 = 19.4 + 2/3 log C4 + log P_e - 5/6 log T. So wings of neutral lines grow with
  P_g ~ g^(2/3): Na I, K I, Mg I, Fe I are stronger in dwarfs (Schiavon et al. 1997, ApJ 479, 902).
* Paschen lines: linear Stark effect (Holtsmark field F0 = 2.603 e N_e^(2/3); component spread
  3/2 (n_u^2 - n_l^2) e a0 F0 lambda^2 / hc), as a Lorentzian of half width
  ``paschen_stark_scale`` = 0.5 times that spread.
* Residual flux: the optical depths of all lines (and TiO) are summed, then one exponent:
  F/C = 1 - D_max (1 - exp(-tau)) with D_max = 0.9, so cores never go black and the curve of growth
  saturates: weak lines W ~ S, strong lines W ~ sqrt(Gamma S) (e.g. the Ca II triplet: Cenarro et
  al. 2001, MNRAS 326, 959; 2002, MNRAS 329, 863).
* Saturated unresolved cores (``saturation_dilution``): at R = 20000 the instrumental width
  (~0.24 A) is ~4x the intrinsic Doppler width, so exponentiating the instrument-broadened tau
  would put the flat part of the curve of growth at ~4x the real equivalent width (an unresolved
  saturated line is a narrow saturated core smeared by the instrument, not a broad saturated
  line). Each line's tau therefore enters the exponent with a weight k = 1 + (Delta_D,tot /
  Delta_D,int - 1) omega c(v) >= 1, where c(v) = e^(-v^2) / (e^(-v^2) + a / (sqrt(pi)(1 + v^2)))
  is the Doppler core's share of the profile and omega = W_D^2 / (W_D^2 + W_L^2) the core's share
  of the equivalent width (W_D = 2 Delta_D,int sqrt(ln(1 + tau0)), W_L = 1.2 sqrt(S Gamma));
  then F/C = 1 - D_max tau (1 - exp(-T)) / T with T = sum k tau. This equals the form above where
  k = 1 (weak lines, resolved damping wings, TiO) and gives a saturated unresolved line the
  equivalent width of its intrinsic profile: isolated-line W within +-6 % of the exact
  (fine-sampled) value for S = 0.1-1000 A; the price is a flat-bottomed core at R = 20000, which
  the R = 5000 instrument smooths. ``saturation_dilution = 0`` restores the plain form.
* Each line is evaluated only in a window around its centre, tapered smoothly (raised cosine
  over its outer 30 %); widths come from classes of 4-250 A, chosen so that the damping-wing
  optical depth where the taper starts stays below 2e-3 at every corner of the synth axes
  (with gravity_coupling = 1; a larger coupling may taper the far wings of extreme corners).

Combining the pieces: the Ca II triplet (majority species, S ~ g^(-1/3)) has W ~ sqrt(Gamma S);
in cool giants the damping is mostly radiative, so W ~ g^(-1/6) falls with log g (Cenarro+2002),
in dwarfs van der Waals damping ~ g^(2/3) takes over and the dependence flattens or reverses.

5. TiO
------
Smooth band opacity from heads at 7054, 7589, 7666, 8432, 8442, 8452, 8859 A (gamma, epsilon and
delta systems; Valenti et al. 1998 ApJ 498, 851), each shaped as a sigmoid head of 1 A width
degrading to the red with an exponential tail. Strength from molecular equilibrium,
N_TiO / N_H ~ A_Ti f_TiI A_O P_H theta^1.5 10^(theta D0), D0 = 6.87 eV, over kappa_c: steeply
growing below ~4000 K and with [M/H] (and [alpha/M]: Ti and O are alpha elements). The constant is
set so that tau(7054 head) = 1 at Teff 3500 K, log g 3, solar abundances.

6. Line list
------------
Named lines (air wavelengths from NIST ASD; log gf and chi approximate NIST / VALD values):

  Ca II  8498.02 (log gf -1.31), 8542.09 (-0.36), 8662.14 (-0.62); chi 1.69/1.70/1.69 eV
  Na I   8183.26 (+0.24), 8194.82 (+0.49); chi 2.10 eV (NIST: +0.237, +0.492)
  K I    7664.90 (+0.13), 7698.96 (-0.17); chi 0
  Mg I   8806.76 (-0.13); chi 4.35 eV
  O I    7771.94 (+0.37), 7774.17 (+0.22), 7775.39 (+0.00); chi 9.15 eV
  Fe I   8468.41 (-2.07, 2.22 eV), 8514.07 (-2.23, 2.20), 8621.60 (-2.32, 2.95),
         8674.75 (-1.80, 2.83), 8688.62 (-1.21, 2.18), 8824.22 (-1.54, 2.20)
  Fe II  7222.39, 7224.49, 7449.33, 7462.41, 7711.72 (chi ~3.9 eV, log gf -3.3 ... -2.5)
  Ti II  7214.73 (chi 2.59, log gf -1.74)
  H I    Paschen 3-n for n = 11..19: 8862.78, 8750.47, 8665.02, 8598.39, 8545.38, 8502.48,
         8467.25, 8437.95, 8413.32; lower level chi = 12.09 eV; f(3-n) from Kramers' formula
         scaled to f(3-10) = 6.98e-3 (Wiese & Fuhr 2009).

Pseudo weak lines (deterministic: ``numpy.random.default_rng(PSEUDO_SEED)``, PSEUDO_SEED =
20240611): 170 Fe I, 45 Ti I, 35 Si I, 25 Cr I, 15 Ca I (290 lines), wavelengths uniform in
6950-9050 A; chi uniform per species over the ranges of their real near-IR lines (Fe I 0.9-5.0,
Ti I 0.0-2.5, Cr I 0.9-3.6, Ca I 1.9-4.6, Si I 4.9-6.2 eV). Their log gf values are set so that
the lines' strengths at the Sun (5777 K, 4.44, 0, 0; default model) are log-uniform between
3 and 250 mA -- the distribution a solar atlas shows -- clipped to -5 <= log gf <= +1.
The strong Fe I lines above sit on top of this list.

Not modelled: CN and molecules other than TiO, H2, the Paschen continuum, NLTE in lines other
than O I, telluric absorption, rotation, a depth-dependent atmosphere.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
from scipy.special import wofz

from .. import PARAMS
from ..errors import InputError
from .gridio import SOURCE_AXES

__all__ = [
    "SYNTH_AXES",
    "SynthModel",
    "raw_wave",
    "synth_spectrum",
    "synth_spectrum_torch",
    "synth_batch",
    "voigt_torch",
    "faddeeva_torch",
    "build_synth_grid",
    "synth_axes",
    "equivalent_width",
    "line_table",
    "named_lines",
    "tio_band_heads",
]

#: Full axes of the synth source: name -> (min, max, step).
SYNTH_AXES = SOURCE_AXES["synth"]

#: Seed of the pseudo weak-line list (documented in the module docstring; never change silently).
PSEUDO_SEED = 20240611

# --- physical constants (cgs) ---------------------------------------------------------------------
C_KMS = 299792.458
C_CGS = 2.99792458e10
K_BOLTZ = 1.380649e-16  # erg / K
H_PLANCK = 6.62607015e-27  # erg s
M_U = 1.66053907e-24  # g
M_H = 1.6735575e-24  # g
E_CHARGE = 4.80320471e-10  # esu
A_BOHR = 5.29177211e-9  # cm
HC_EV_A = 12398.42  # h c in eV A
SIGMA_LINE_A = 8.8528e-21  # pi e^2 / (m_e c^2) [cm] x 1e-16 (A^2 -> cm^2) x 1e8 (cm -> A)
SAHA = 1.2020e9  # Gray Eq. 1.20, dyn cm^-2
A_HE = 10 ** (10.93 - 12)  # helium per H (Asplund+2009)
MU_H = (1.0 + 4.0 * A_HE) * M_H  # mass per H nucleus
LAMBDA_REF = 8000.0  # A, wavelength of the "mean" continuum opacity
TIO_D0 = 6.87  # eV, TiO dissociation energy
SQRT_PI = math.sqrt(math.pi)
_K_HM_GUESS = 1e-25  # typical H^- opacity per H per unit P_e: only sets the starting point
_PE_ITERATIONS = 20  # Newton steps of the P_e solution (converged to ~1e-14 by 12 over the axes, gamma <= 3)
LN10 = math.log(10.0)


@dataclass(frozen=True)
class SynthModel:
    """All physical knobs of the forward model (defaults = the physical model)."""

    xi_kms: float = 2.0  # microturbulence, km/s (BOSZ v20)
    vdw_enhancement: float = 1.5  # van der Waals damping x Unsoeld (1.5-2.5 is usual)
    gravity_coupling: float = 1.0  # gamma > 0: multiplies every pressure exponent (log g response);
    #                                 1 = physical; the log g information grows monotonically with it
    logg_pivot: float = 3.0  # dex: log g left unchanged by gravity_coupling (mid of the prior 1-5)
    tau_layer: float = 0.3  # continuum optical depth of the line-forming layer
    line_formation_factor: float = 0.2  # weak-line depth / (line-to-continuum opacity ratio)
    max_depth: float = 0.9  # D_max: residual flux never below 1 - D_max
    saturation_dilution: float = 1.0  # 1: saturated unresolved cores keep their intrinsic curve of
    #                                   growth; 0: plain instrument-broadened opacity (see section 4)
    paschen_stark_scale: float = 0.5  # Lorentz HWHM / linear-Stark component spread (Paschen)
    oi_nlte_base: float = 0.10  # dex: O I NLTE strengthening at log g 4.5, Teff 6000 K
    oi_nlte_slope: float = 0.12  # dex per dex of (4.5 - log g)
    tio_scale: float = 1.0  # multiplies the TiO band opacity (0 switches TiO off)


# ---------------------------------------------------------------------------------------------
# Atomic data
# ---------------------------------------------------------------------------------------------
# species: mass (u), log eps (Asplund+2009), alpha element?, I1, I2 (eV), u_I, u_II, u_III
_SPECIES = {
    "H": (1.008, 12.00, 0, 13.598, 99.0, 2.0, 1.0, 1.0),
    "O": (15.999, 8.69, 1, 13.618, 35.12, 9.0, 4.0, 1.0),
    "Na": (22.990, 6.24, 0, 5.139, 47.29, 2.0, 1.0, 6.0),
    "Mg": (24.305, 7.60, 1, 7.646, 15.035, 1.0, 2.0, 1.0),
    "Al": (26.982, 6.45, 0, 5.986, 18.83, 5.9, 1.0, 2.0),
    "Si": (28.086, 7.51, 1, 8.152, 16.35, 9.4, 5.7, 1.0),
    "K": (39.098, 5.03, 0, 4.341, 31.63, 2.1, 1.0, 1.0),
    "Ca": (40.078, 6.34, 1, 6.113, 11.872, 1.2, 2.1, 1.0),
    "Ti": (47.867, 4.95, 1, 6.828, 13.58, 30.0, 55.0, 25.0),
    "Cr": (51.996, 5.64, 0, 6.767, 16.49, 9.5, 7.0, 1.0),
    "Fe": (55.845, 7.50, 0, 7.902, 16.19, 27.0, 42.0, 25.0),
}
SPECIES = tuple(_SPECIES)
_SP = {name: i for i, name in enumerate(SPECIES)}
_SP_MASS = np.array([v[0] for v in _SPECIES.values()])
_SP_LOGEPS = np.array([v[1] for v in _SPECIES.values()])
_SP_ALPHA = np.array([v[2] for v in _SPECIES.values()], dtype=float)
_SP_ION = np.array([[v[3], v[4]] for v in _SPECIES.values()])  # (n_sp, 2)
_SP_U = np.array([[v[5], v[6], v[7]] for v in _SPECIES.values()])  # (n_sp, 3)
_DONORS = np.array([_SP[s] for s in ("Na", "Mg", "Al", "Si", "K", "Ca", "Ti", "Cr", "Fe")])


def _paschen_loggf(n_upper):
    """log gf of Paschen 3-n: Kramers' n-dependence scaled to f(3-10) = 6.98e-3 (Wiese & Fuhr 2009)."""
    def kramers(n):
        return 1.0 / n**3 / (1.0 / 9.0 - 1.0 / n**2) ** 3
    f = 6.98e-3 * kramers(n_upper) / kramers(10)
    return math.log10(18.0 * f)  # g_lower = 2 n^2 = 18


# Named lines: (label, species, stage (0 = I, 1 = II), air wavelength A, log gf, chi eV,
#               log gamma_rad, log C4, minimum window half-width A; see _window_halfwidths)
_NAMED_LINES = [
    ("Ca II 8498", "Ca", 1, 8498.02, -1.31, 1.692, 8.21, -15.0, 60.0),
    ("Ca II 8542", "Ca", 1, 8542.09, -0.36, 1.700, 8.21, -15.0, 60.0),
    ("Ca II 8662", "Ca", 1, 8662.14, -0.62, 1.692, 8.19, -15.0, 60.0),
    ("Na I 8183", "Na", 0, 8183.26, 0.24, 2.102, 7.90, -14.5, 30.0),
    ("Na I 8195", "Na", 0, 8194.82, 0.49, 2.104, 7.90, -14.5, 30.0),
    ("K I 7665", "K", 0, 7664.90, 0.13, 0.000, 7.56, -15.2, 30.0),
    ("K I 7699", "K", 0, 7698.96, -0.17, 0.000, 7.56, -15.2, 30.0),
    ("Mg I 8807", "Mg", 0, 8806.76, -0.13, 4.346, 8.70, -14.0, 30.0),
    ("O I 7772", "O", 0, 7771.94, 0.37, 9.146, 7.52, -13.5, 6.0),
    ("O I 7774", "O", 0, 7774.17, 0.22, 9.146, 7.52, -13.5, 6.0),
    ("O I 7775", "O", 0, 7775.39, 0.00, 9.146, 7.52, -13.5, 6.0),
    ("Fe I 8468", "Fe", 0, 8468.41, -2.07, 2.223, 8.0, -15.0, 6.0),
    ("Fe I 8514", "Fe", 0, 8514.07, -2.23, 2.198, 8.0, -15.0, 6.0),
    ("Fe I 8622", "Fe", 0, 8621.60, -2.32, 2.949, 8.0, -15.0, 6.0),
    ("Fe I 8675", "Fe", 0, 8674.75, -1.80, 2.831, 8.0, -15.0, 6.0),
    ("Fe I 8689", "Fe", 0, 8688.62, -1.21, 2.176, 8.0, -15.0, 6.0),
    ("Fe I 8824", "Fe", 0, 8824.22, -1.54, 2.198, 8.0, -15.0, 6.0),
    ("Fe II 7222", "Fe", 1, 7222.39, -3.26, 3.889, 8.5, -15.0, 6.0),
    ("Fe II 7224", "Fe", 1, 7224.49, -3.24, 3.889, 8.5, -15.0, 6.0),
    ("Fe II 7449", "Fe", 1, 7449.33, -3.27, 3.889, 8.5, -15.0, 6.0),
    ("Fe II 7462", "Fe", 1, 7462.41, -2.73, 3.889, 8.5, -15.0, 6.0),
    ("Fe II 7712", "Fe", 1, 7711.72, -2.54, 3.903, 8.5, -15.0, 6.0),
    ("Ti II 7215", "Ti", 1, 7214.73, -1.74, 2.590, 8.5, -15.0, 6.0),
] + [
    (f"H I P{n}", "H", 0, w, _paschen_loggf(n), 12.087, 8.5, -99.0, 30.0)
    for n, w in zip(range(11, 20), (8862.78, 8750.47, 8665.02, 8598.39, 8545.38, 8502.48,
                                      8467.25, 8437.95, 8413.32))
]

# Pseudo weak lines: species -> (count, chi_min, chi_max) eV.
_PSEUDO_SPEC = {"Fe": (170, 0.9, 5.0), "Ti": (45, 0.0, 2.5), "Si": (35, 4.9, 6.2),
                "Cr": (25, 0.9, 3.6), "Ca": (15, 1.9, 4.6)}
_PSEUDO_EW_RANGE = (0.003, 0.25)  # A, solar strengths, log-uniform
_PSEUDO_WAVE_RANGE = (6950.0, 9050.0)

# TiO band heads: (head A, relative strength, exponential tail length A), degrading to the red.
_TIO_BANDS = np.array([
    (7054.0, 1.00, 120.0),
    (7589.0, 0.50, 70.0),
    (7666.0, 0.60, 110.0),
    (8432.0, 0.30, 15.0),
    (8442.0, 0.30, 15.0),
    (8452.0, 0.35, 60.0),
    (8859.0, 0.45, 120.0),
])
_TIO_HEAD_WIDTH = 1.0  # A, sigmoid width of a band head


def _hminus_alpha(wave):
    """H^- opacity cross-section per H^- ion, bound-free (Gray Eq. 8.11, John 1988 fit) plus a
    free-free term (5 % of bound-free at 8000 A, ~lambda^2), cm^2. wave in A (valid 2250-15000 A)."""
    w = np.asarray(wave, dtype=float)
    a = (1.99654, -1.18267e-5, 2.64243e-6, -4.40524e-10, 3.23992e-14, -1.39568e-18, 2.78701e-23)
    bf = sum(c * w**k for k, c in enumerate(a)) * 1e-18
    ff = 0.05 * 3.9780e-17 * (w / LAMBDA_REF) ** 2
    return bf + ff


def _rayleigh_sigma(wave):
    """Rayleigh scattering cross-section of neutral H, cm^2 per atom (Gray Eq. 8.16; wave in A)."""
    w = np.asarray(wave, dtype=float)
    return 5.799e-13 / w**4 + 1.422e-6 / w**6 + 2.784 / w**8


_ALPHA_REF = float(_hminus_alpha(LAMBDA_REF))
_RAYLEIGH_REF = float(_rayleigh_sigma(LAMBDA_REF))


# ---------------------------------------------------------------------------------------------
# Array backends: one set of physics equations, evaluated by NumPy or by torch
# ---------------------------------------------------------------------------------------------
class _NumpyOps:
    exp, expm1, log, log10, sqrt, logaddexp = np.exp, np.expm1, np.log, np.log10, np.sqrt, np.logaddexp

    def __init__(self):
        self.dtype = np.float64

    def const(self, x):
        return np.asarray(x, dtype=float)

    def voigt(self, v, a):
        return wofz(v + 1j * a).real

    def zeros(self, shape):
        return np.zeros(shape)

    def scatter_add(self, out, idx, vals):
        """out (B, n) += vals (B, K) at columns idx (K,)."""
        B, n = out.shape
        flat = (idx[None, :] + n * np.arange(B)[:, None]).ravel()
        return out + np.bincount(flat, weights=vals.ravel(), minlength=B * n).reshape(B, n)

    def stack(self, xs, axis):
        return np.stack(xs, axis=axis)


class _TorchOps:
    def __init__(self, torch, device):
        self.t = torch
        self.device = device
        self.dtype = torch.float64
        self.exp, self.expm1, self.log, self.log10, self.sqrt = (torch.exp, torch.expm1, torch.log,
                                                                torch.log10, torch.sqrt)
        self.logaddexp = torch.logaddexp

    def const(self, x):
        return self.t.as_tensor(np.asarray(x, dtype=float), dtype=self.dtype, device=self.device)

    def voigt(self, v, a):
        return voigt_torch(v, a)

    def zeros(self, shape):
        return self.t.zeros(shape, dtype=self.dtype, device=self.device)

    def scatter_add(self, out, idx, vals):
        return out.index_add(1, idx, vals)

    def stack(self, xs, axis):
        return self.t.stack(xs, dim=axis)


# ---------------------------------------------------------------------------------------------
# Line list
# ---------------------------------------------------------------------------------------------
def _line_arrays(entries):
    """Parameter-independent per-line constants from (species, stage, wave, loggf, chi, lgrad, lc4,
    halfwidth, is_hydrogen, nlte) tuples."""
    sp = np.array([_SP[e[0]] for e in entries])
    stage = np.array([e[1] for e in entries])
    wave0 = np.array([e[2] for e in entries], dtype=float)
    loggf = np.array([e[3] for e in entries], dtype=float)
    chi = np.array([e[4] for e in entries], dtype=float)
    lgrad = np.array([e[5] for e in entries], dtype=float)
    lc4 = np.array([e[6] for e in entries], dtype=float)
    half = np.array([e[7] for e in entries], dtype=float)
    hyd = np.array([e[8] for e in entries], dtype=bool)
    nlte = np.array([e[9] for e in entries], dtype=float)
    # Unsoeld C6 (hydrogenic, effective charge Z = stage + 1), energy gap clamped at 1 eV
    ion = _SP_ION[sp, stage]
    chi_up = chi + HC_EV_A / wave0
    gap_u = np.maximum(ion - chi_up, 1.0)
    gap_l = np.maximum(ion - chi, gap_u + 0.1)
    c6 = 0.3e-30 * (stage + 1.0) ** 2 * (1.0 / gap_u**2 - 1.0 / gap_l**2)
    log_c6 = np.where(hyd, -99.0, np.log10(c6))
    # log10 of the parameter-independent part of S (see module docstring, section 3)
    log_s0 = np.log10(SIGMA_LINE_A * wave0**2) + loggf - np.log10(_SP_U[sp, stage])
    # upper level of a Paschen line from its wavelength (Rydberg formula), 0 for the other lines
    n_upper = np.where(hyd, np.round(np.sqrt(1.0 / np.maximum(1.0 / 9.0 - HC_EV_A / wave0 / 13.598, 1e-6))), 0.0)
    return dict(sp=sp, stage=stage, wave0=wave0, loggf=loggf, chi=chi, log_grad=lgrad,
                log_c4=lc4, log_c6=log_c6, half=half, hyd=hyd, nlte=nlte, log_s0=log_s0,
                hm_alpha=4.158e-10 * _hminus_alpha(wave0), rayleigh=_rayleigh_sigma(wave0),
                mass=_SP_MASS[sp] * M_U, n_upper=n_upper)


def _named_entries():
    out = []
    for label, s, st, w, gf, chi, lgrad, lc4, half in _NAMED_LINES:
        out.append((s, st, w, gf, chi, lgrad, lc4, half, s == "H", 1.0 if s == "O" else 0.0))
    return out


@functools.lru_cache(maxsize=1)
def _pseudo_entries():
    """The deterministic pseudo weak-line list (see module docstring, section 6)."""
    rng = np.random.default_rng(PSEUDO_SEED)
    raw = []
    for s, (n, chi_lo, chi_hi) in _PSEUDO_SPEC.items():
        w = rng.uniform(*_PSEUDO_WAVE_RANGE, size=n)
        chi = rng.uniform(chi_lo, chi_hi, size=n)
        lg_w = rng.uniform(np.log10(_PSEUDO_EW_RANGE[0]), np.log10(_PSEUDO_EW_RANGE[1]), size=n)
        for k in range(n):
            raw.append((s, 0, float(w[k]), 0.0, float(chi[k]), 8.0, -15.0, 4.0, False, 0.0, float(lg_w[k])))
    # strengths per unit gf at the Sun with the default model -> log gf for the target strength
    arrays = _line_arrays([r[:10] for r in raw])
    ops = _NumpyOps()
    layer = _layer(ops, ops.const([[5777.0, 4.44, 0.0, 0.0]]), SynthModel())
    log_s_per_gf = _log_strength(ops, layer, arrays, SynthModel())[0] / LN10
    loggf = np.clip(np.array([r[10] for r in raw]) - log_s_per_gf, -5.0, 1.0)
    return [r[:3] + (float(g),) + r[4:10] for r, g in zip(raw, loggf)]


def line_table():
    """All lines of the model: dict of per-line arrays (``wave0`` A, ``sp`` species index into
    :data:`SPECIES`, ``stage`` 0/1, ``loggf``, ``chi`` eV, ``named`` True for the real strong lines
    of the module docstring, False for the pseudo weak lines, ...). Named lines first."""
    named, pseudo = _named_entries(), _pseudo_entries()
    table = _line_arrays(named + pseudo)
    table["named"] = np.arange(len(named) + len(pseudo)) < len(named)
    return table


def named_lines():
    """The real strong lines of the model (module docstring), in table order: [(label, air
    wavelength A)], e.g. ("Ca II 8498", 8498.02)."""
    return [(label, w) for label, _, _, w, *_ in _NAMED_LINES]


def tio_band_heads():
    """The air wavelengths (A) of the model's TiO band heads, bluest first."""
    return _TIO_BANDS[:, 0].copy()


# ---------------------------------------------------------------------------------------------
# The physics, written once for both backends
# ---------------------------------------------------------------------------------------------
def _ion_fractions(ops, ln_pe, ln_phi1, ln_phi2):
    """ln of the fractions in stages I, II, III from Saha; ln_phi* (B, n_sp), ln_pe (B, 1)."""
    lx1 = ln_phi1 - ln_pe
    lx2 = ln_phi2 - ln_pe
    ln_f0 = -ops.logaddexp(0.0 * lx1, ops.logaddexp(lx1, lx1 + lx2))
    return ln_f0, ln_f0 + lx1, ln_f0 + lx1 + lx2


def _layer(ops, params, model):
    """State of the line-forming layer for params (B, 4) = (teff, logg, mh, alpha).

    Returns a dict of (B,) or (B, n_sp) arrays: T, theta, P_e, P_g, N_e, abund (A_X per H nucleus),
    ln_f (3 stages, each (B, n_sp)), ln_ph (ln of the H nuclei partial pressure), hm_t
    (theta^2.5 10^(0.754 theta)) and ln_fhi (ln of the neutral H fraction), such that
    kappa_c(lambda) = f_HI (4.158e-10 alpha(lambda) hm_t P_e + sigma_R(lambda)) cm^2 per H, logg_eff.
    """
    teff, logg, mh, alpha = (params[:, k] for k in range(4))
    temp = teff * (0.75 * (model.tau_layer + 2.0 / 3.0)) ** 0.25  # K
    theta = 5040.0 / temp
    logg_eff = model.logg_pivot + model.gravity_coupling * (logg - model.logg_pivot)
    ln_g = logg_eff * LN10

    # abundances per H nucleus, ln, (B, n_sp)
    ln_abund = (ops.const(_SP_LOGEPS - 12.0)[None, :] + mh[:, None]
                + ops.const(_SP_ALPHA)[None, :] * alpha[:, None]) * LN10
    ln_abund = ln_abund * ops.const(np.where(np.arange(len(SPECIES)) == _SP["H"], 0.0, 1.0))[None, :]
    # Saha Phi(T) of stages I->II and II->III, ln, (B, n_sp)
    ln_theta = ops.log(theta)[:, None]
    base = math.log(SAHA) - 2.5 * ln_theta
    ln_phi1 = (base + ops.const(np.log(_SP_U[:, 1] / _SP_U[:, 0]))[None, :]
               - theta[:, None] * ops.const(_SP_ION[:, 0])[None, :] * LN10)
    ln_phi2 = (base + ops.const(np.log(_SP_U[:, 2] / _SP_U[:, 1]))[None, :]
               - theta[:, None] * ops.const(_SP_ION[:, 1])[None, :] * LN10)
    # H^- opacity per neutral H per unit P_e (divided by the cross-section alpha(lambda)), ln
    ln_hm_t = 2.5 * ops.log(theta) + 0.754 * theta * LN10
    k_hm = 4.158e-10 * _ALPHA_REF * ops.exp(ln_hm_t)  # at LAMBDA_REF, cm^2 per H per (dyn cm^-2)
    ln_gtm = ln_g + math.log(model.tau_layer * MU_H)  # ln(g tau mu m_H)

    donors = ops.const(np.eye(len(SPECIES))[_DONORS].sum(axis=0))[None, :]
    i_h = _SP["H"]

    def residual(ln_pe):
        # G(ln P_e) = ln P_e + ln kappa_H - ln(g tau mu m_H) - ln(E / (1 + A_He + E)); kappa_H per H
        # nucleus = f_HI (k_hm P_e + sigma_Rayleigh); also returns dG/d ln P_e >= 1 (up to the small
        # second-ionisation and (1 + A_He + E) terms, which only make the step more cautious)
        f0, f1, f2 = _ion_fractions(ops, ln_pe[:, None], ln_phi1, ln_phi2)
        abund = donors * ops.exp(ln_abund)
        x1, x2 = ops.exp(f1), ops.exp(f2)
        elec = (abund * (x1 + 2.0 * x2)).sum(-1) + x1[:, i_h]
        k_pe = k_hm * ops.exp(ln_pe)
        kappa = k_pe + _RAYLEIGH_REF
        # d ln E / d ln P_e: each donor's ionised fraction x1 = 1 - f0 falls as -x1 f0
        d_elec = -(abund * x1 * ops.exp(f0)).sum(-1) - x1[:, i_h] * ops.exp(f0[:, i_h])
        g = (ln_pe + ops.log(kappa) - ln_gtm - ops.log(elec) + ops.log(1.0 + A_HE + elec)
             + f0[:, i_h])
        slope = 1.0 + k_pe / kappa - d_elec / elec + x1[:, i_h]
        return g, slope, elec

    # Newton steps on ln P_e (the slope is bounded in [1, 4]: no overshoot to guard against)
    ln_pe = 0.5 * (ln_gtm - math.log(_K_HM_GUESS) + math.log(1e-4))
    for _ in range(_PE_ITERATIONS):
        g, slope, _elec = residual(ln_pe)
        ln_pe = ln_pe - g / slope
    _g, _slope, elec = residual(ln_pe)
    f0, f1, f2 = _ion_fractions(ops, ln_pe[:, None], ln_phi1, ln_phi2)
    p_e = ops.exp(ln_pe)
    p_g = p_e * (1.0 + A_HE + elec) / elec
    return dict(teff=teff, T=temp, theta=theta, logg_eff=logg_eff, mh=mh, alpha=alpha,
                ln_pe=ln_pe, P_e=p_e, P_g=p_g, N_e=p_e / (K_BOLTZ * temp),
                ln_abund=ln_abund, ln_f=(f0, f1, f2), ln_ph=ln_pe - ops.log(elec),
                hm_t=ops.exp(ln_hm_t), ln_fhi=f0[:, i_h])


def _ln_kappa_c(ops, layer, hm_alpha, rayleigh):
    """ln of the continuous opacity per H nucleus (cm^2) at wavelengths with H^- cross-section
    4.158e-10 alpha (hm_alpha) and Rayleigh cross-section (rayleigh), (B, L)."""
    k = (ops.const(hm_alpha)[None, :] * (layer["hm_t"] * layer["P_e"])[:, None]
         + ops.const(rayleigh)[None, :])
    return ops.log(k) + layer["ln_fhi"][:, None]


def _log_strength(ops, layer, lines, model):
    """ln S (A) of each line, (B, L): integrated line optical depth (module docstring, section 3)."""
    sp, st = lines["sp"], lines["stage"]
    ln_f = ops.stack(layer["ln_f"], -1)  # (B, n_sp, 3)
    theta = layer["theta"][:, None]
    # log_s0 holds sigma lambda0^2 gf / u
    ln_s = (ops.const(lines["log_s0"] * LN10)[None, :] + math.log(model.line_formation_factor)
            + layer["ln_abund"][:, sp] + ln_f[:, sp, st]
            - theta * ops.const(lines["chi"] * LN10)[None, :]
            - _ln_kappa_c(ops, layer, lines["hm_alpha"], lines["rayleigh"]))
    if lines["nlte"].any():
        delta = (layer["teff"] / 6000.0) * (model.oi_nlte_base + model.oi_nlte_slope * (4.5 - layer["logg_eff"]))
        ln_s = ln_s + ops.const(lines["nlte"])[None, :] * (delta * LN10)[:, None]
    return ln_s


def _profile_params(ops, layer, lines, model, resolution):
    """Widths of each line, (B, L): intrinsic Doppler width (thermal + microturbulence, A),
    total Doppler width (with the instrumental Gaussian, A) and Lorentz half width (A)."""
    temp = layer["T"][:, None]
    wave0 = ops.const(lines["wave0"])[None, :]
    v_inst = C_KMS / (2.0 * math.sqrt(math.log(2.0)) * resolution)  # km/s, 1/e half width
    v2 = (2.0 * K_BOLTZ * temp / ops.const(lines["mass"])[None, :]) / 1e10 + model.xi_kms**2
    dl_int = wave0 / C_KMS * ops.sqrt(v2)
    dl_tot = wave0 / C_KMS * ops.sqrt(v2 + v_inst**2)
    log_t = ops.log10(temp)
    log_pg = ops.log10(layer["P_g"])[:, None]
    log_pe = ops.log10(layer["P_e"])[:, None]
    gamma = (ops.const(10.0 ** lines["log_grad"])[None, :]
             + model.vdw_enhancement * 10.0 ** (19.6 + 0.4 * ops.const(lines["log_c6"])[None, :]
                                               + log_pg - 0.7 * log_t)
             + 10.0 ** (19.4 + (2.0 / 3.0) * ops.const(lines["log_c4"])[None, :] + log_pe
                        - (5.0 / 6.0) * log_t))  # rad/s
    hwhm = gamma * (wave0**2 * 1e-8) / (4.0 * math.pi * C_CGS)  # A
    if lines["hyd"].any():
        # linear Stark (Holtsmark), Paschen lines only
        f0 = 2.603 * E_CHARGE * layer["N_e"][:, None] ** (2.0 / 3.0)
        n_u = ops.const(lines["n_upper"])[None, :]
        spread = 1.5 * (n_u**2 - 9.0) * E_CHARGE * A_BOHR * f0 * (wave0 * 1e-8) ** 2 / (H_PLANCK * C_CGS) * 1e8
        hwhm = hwhm + ops.const(lines["hyd"].astype(float))[None, :] * model.paschen_stark_scale * spread
    return dl_int, dl_tot, hwhm


def _dilution(ops, ln_s, dl_int, dl_tot, hwhm, model):
    """Per-line saturation dilution k_max - 1 >= 0, (B, L) (module docstring, section 4).

    (dl_tot / dl_int - 1) weighted by omega = W_D^2 / (W_D^2 + W_L^2), the share of the intrinsic
    Doppler core in the line's equivalent width (W_D = 2 dl_int sqrt(ln(1 + tau0)) the flat part,
    W_L = 0.6 x 2 sqrt(S Gamma) the damping part of the curve of growth; 0.6 fitted so that
    isolated-line equivalent widths stay within +-6 % of the exact convolution of the intrinsic
    profile for S = 0.1-1000 A): 1 for weak and Doppler-saturated lines, -> 0 for lines whose
    strength sits in resolved damping wings.
    """
    ln_tau0 = ln_s - ops.log(SQRT_PI * dl_int)
    w_d2 = dl_int**2 * ops.logaddexp(0.0 * ln_tau0, ln_tau0)  # ln(1 + tau0) (W_D^2 / 4)
    w_l2 = 0.36 * ops.exp(ln_s) * hwhm  # W_L^2 / 4
    omega = w_d2 / (w_d2 + w_l2)
    return model.saturation_dilution * (dl_tot / dl_int - 1.0) * omega


def _tio_ln_x(ops, layer):
    """ln of the (unnormalised) TiO band opacity ratio, (B,) (module docstring, section 5)."""
    i_ti, i_o = _SP["Ti"], _SP["O"]
    f0 = layer["ln_f"][0]
    theta = layer["theta"]
    return (layer["ln_abund"][:, i_ti] + f0[:, i_ti] + layer["ln_abund"][:, i_o] + f0[:, i_o]
            + layer["ln_ph"] + 1.5 * ops.log(theta) + TIO_D0 * theta * LN10
            - _ln_kappa_c(ops, layer, [4.158e-10 * _ALPHA_REF], [_RAYLEIGH_REF])[:, 0])


@functools.lru_cache(maxsize=1)
def _tio_ln_norm():
    """Normalisation: TiO coefficient 1 (tau ~ 1 at the 7054 head) at 3500 K, log g 3, 0, 0."""
    ops = _NumpyOps()
    layer = _layer(ops, ops.const([[3500.0, 3.0, 0.0, 0.0]]), SynthModel())
    return -float(_tio_ln_x(ops, layer)[0])


def _tio_tau(ops, layer, wave, model):
    """TiO band optical depth (B, n), or None when switched off."""
    if model.tio_scale == 0:
        return None
    ln_x = _tio_ln_x(ops, layer) + _tio_ln_norm() + math.log(model.tio_scale)
    heads, rel, tail = (ops.const(_TIO_BANDS[:, k]) for k in range(3))
    dl = wave[None, :] - heads[:, None]  # (n_bands, n)
    # sigmoid head x exponential tail, in a form that never overflows: exp(-dl/L - softplus(-dl/w))
    shape = (rel[:, None] * ops.exp(-dl / tail[:, None] - ops.logaddexp(0.0 * dl, -dl / _TIO_HEAD_WIDTH))).sum(0)
    return ops.exp(ln_x)[:, None] * shape[None, :]


def _continuum(ops, teff, wave):
    """Continuum F_lambda = pi B_lambda(T_c(lambda)), erg s^-1 cm^-2 A^-1, (B, n)."""
    ratio = ops.const(_ALPHA_REF / _hminus_alpha(_wave_np(wave)))  # kappa_ref / kappa(lambda)
    t_c = teff[:, None] * (0.75 * (2.0 / 3.0 * ratio[None, :] + 2.0 / 3.0)) ** 0.25
    lam = wave[None, :] * 1e-8  # cm
    x = H_PLANCK * C_CGS / (lam * K_BOLTZ * t_c)
    b_lam = 2.0 * H_PLANCK * C_CGS**2 / lam**5 / (ops.exp(x) - 1.0)
    return math.pi * b_lam * 1e-8


def _wave_np(wave):
    return wave.detach().cpu().numpy() if hasattr(wave, "detach") else np.asarray(wave)


# ---------------------------------------------------------------------------------------------
# Windows: which pixels each line touches (parameter independent, cached per wavelength grid)
# ---------------------------------------------------------------------------------------------
_WINDOW_CLASSES = np.array([4.0, 6.0, 9.0, 13.0, 20.0, 30.0, 45.0, 60.0, 90.0, 130.0, 160.0, 200.0, 250.0])
_WINDOW_TAU_EDGE = 2e-3  # largest damping-wing optical depth allowed where the taper starts


def _window_halfwidths(lines, resolution, red_end, model):
    """Half-width (A) of each line's pixel window: the smallest class in _WINDOW_CLASSES that is at
    least the listed minimum, 14 instrumental Doppler widths, and wide enough that the damping-wing
    optical depth S Gamma / (pi x^2) at the taper start (x = 0.7 half-width) stays below
    _WINDOW_TAU_EDGE for every corner of the synth axes (capped at 250 A), with gravity_coupling = 1."""
    teff, logg, mh, alpha = np.meshgrid([3500.0, 4250.0, 5000.0, 6000.0, 7000.0], [0.0, 2.5, 5.0],
                                        [-2.5, 0.75], [-0.25, 0.5], indexing="ij")
    corners = np.stack([teff.ravel(), logg.ravel(), mh.ravel(), alpha.ravel()], axis=-1)
    # windows do not depend on gravity_coupling, so that spectra at the pivot do not either
    model = dataclasses.replace(model, gravity_coupling=1.0)
    ops = _NumpyOps()
    layer = _layer(ops, corners, model)
    strength = np.exp(_log_strength(ops, layer, lines, model))
    _dl_int, _dl_tot, hwhm = _profile_params(ops, layer, lines, model, resolution)
    need = np.sqrt((strength * hwhm).max(axis=0) / (math.pi * _WINDOW_TAU_EDGE)) / 0.7
    dl_inst = red_end / (2.0 * math.sqrt(math.log(2.0)) * resolution)
    need = np.maximum(np.maximum(need, lines["half"]), 14.0 * dl_inst)
    k = np.minimum(np.searchsorted(_WINDOW_CLASSES, need), len(_WINDOW_CLASSES) - 1)
    return np.maximum(_WINDOW_CLASSES[k], np.minimum(need, 14.0 * dl_inst))


class _Prepared:
    """Line groups with their pixel windows on one wavelength grid."""

    def __init__(self, wave, resolution, model):
        wave = np.asarray(wave, dtype=float)
        lines = line_table()
        half = _window_halfwidths(lines, resolution, wave.max(), model)
        keep = (lines["wave0"] + half > wave[0]) & (lines["wave0"] - half < wave[-1])
        self.groups = []
        for h in np.unique(half[keep]):
            sel = keep & (half == h)
            g = {k: v[sel] for k, v in lines.items()}
            lo = np.searchsorted(wave, g["wave0"] - h, side="left")
            hi = np.searchsorted(wave, g["wave0"] + h, side="right")
            width = int(max(1, (hi - lo).max()))
            idx = lo[:, None] + np.arange(width)[None, :]
            inside = idx < hi[:, None]
            idx = np.minimum(idx, len(wave) - 1)
            dl = wave[idx] - g["wave0"][:, None]
            # smooth taper over the outer 30 % of the window: no step where a window ends
            x = np.clip((np.abs(dl) / h - 0.7) / 0.3, 0.0, 1.0)
            taper = np.where(inside, 0.5 * (1.0 + np.cos(math.pi * x)), 0.0)
            g.update(idx=idx, dl=dl, taper=taper, halfwidth=h)
            self.groups.append(g)
        self.wave = wave
        self._torch = {}

    def torch_groups(self, torch, device):
        key = str(device)
        if key not in self._torch:
            conv = []
            for g in self.groups:
                tg = dict(g)
                tg["idx_t"] = torch.as_tensor(g["idx"].ravel(), dtype=torch.long, device=device)
                tg["dl_t"] = torch.as_tensor(g["dl"], dtype=torch.float64, device=device)
                tg["taper_t"] = torch.as_tensor(g["taper"], dtype=torch.float64, device=device)
                conv.append(tg)
            self._torch[key] = conv
        return self._torch[key]


_PREP_CACHE = {}


def _prepared(wave, resolution, model):
    wave = np.ascontiguousarray(_wave_np(wave), dtype=float)
    key = (hashlib.sha1(wave.tobytes()).hexdigest(), float(resolution), model)
    if key not in _PREP_CACHE:
        if len(_PREP_CACHE) > 8:
            _PREP_CACHE.clear()
        _PREP_CACHE[key] = _Prepared(wave, resolution, model)
    return _PREP_CACHE[key]


def _spectrum(ops, wave, params, resolution, model, prep, groups):
    """flux, cont (B, n) for params (B, 4) on wave (n,), any backend."""
    layer = _layer(ops, params, model)
    n = wave.shape[0]
    tau = ops.zeros((params.shape[0], n))  # sum of the (instrument-broadened) optical depths
    tau_sat = ops.zeros((params.shape[0], n))  # the same, each weighted by its dilution k >= 1
    for g in groups:
        ln_s = _log_strength(ops, layer, g, model)  # (B, L)
        dl_int, dl_tot, hwhm = _profile_params(ops, layer, g, model, resolution)
        k_core = _dilution(ops, ln_s, dl_int, dl_tot, hwhm, model)  # (B, L)
        a = hwhm / dl_tot
        dl = g["dl_t"] if "dl_t" in g else g["dl"]
        taper = g["taper_t"] if "taper_t" in g else g["taper"]
        idx = g["idx_t"] if "idx_t" in g else g["idx"].ravel()
        v = dl[None, :, :] / dl_tot[:, :, None]  # (B, L, W)
        amp = ops.exp(ln_s) / (SQRT_PI * dl_tot)  # (B, L)
        voigt = ops.voigt(v, a[:, :, None])
        contrib = amp[:, :, None] * voigt * taper[None, :, :]  # (B, L, W)
        # the Doppler core's share of the profile at each point: 1 in the core, -> 0 in the wings
        gauss = ops.exp(-v * v)
        core = gauss / (gauss + a[:, :, None] / (SQRT_PI * (1.0 + v * v)))
        k = 1.0 + k_core[:, :, None] * core
        B = contrib.shape[0]
        tau = ops.scatter_add(tau, idx, contrib.reshape(B, -1))
        tau_sat = ops.scatter_add(tau_sat, idx, (k * contrib).reshape(B, -1))
    tio = _tio_tau(ops, layer, wave, model)
    if tio is not None:
        tau = tau + tio
        tau_sat = tau_sat + tio
    # absorption D tau (1 - exp(-T)) / T, T = sum k tau: = D (1 - exp(-tau)) when k = 1
    tau_sat = tau_sat + 1e-12  # no 0/0 where no line reaches
    norm = 1.0 - model.max_depth * tau * (-ops.expm1(-tau_sat)) / tau_sat
    cont = _continuum(ops, layer["teff"], wave)
    return cont * norm, cont


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------
def raw_wave(resolution=20000, wave_range=(7000.0, 9000.0)):
    """Wavelengths (A, air) of the raw grid: log-uniform with two samples per resolution element,
    wave_k = lo (1 + 1/(2R))^k for all k with wave_k <= hi (as BOSZ)."""
    _check_resolution(resolution, minimum=1)
    lo, hi = _check_wave_range(wave_range)
    step = math.log1p(1.0 / (2.0 * resolution))
    k = np.arange(int(math.floor(math.log(hi / lo) / step + 1e-9)) + 1)
    return lo * np.exp(k * step)


def synth_batch(wave, params, resolution=20000, model=SynthModel()):
    """NumPy spectra for many parameter sets at once: params (B, 4) = (teff K, logg dex, mh dex,
    alpha dex) rows -> flux, cont (B, n), erg s^-1 cm^-2 A^-1 (see :func:`synth_spectrum`)."""
    _check_resolution(resolution, minimum=1000)
    _check_model(model)
    wave = np.asarray(wave, dtype=float)
    params = np.atleast_2d(np.asarray(params, dtype=float))
    if wave.ndim != 1 or not np.all(np.diff(wave) > 0):
        raise InputError("wave: expected a 1D strictly increasing array of wavelengths (A)")
    if params.ndim != 2 or params.shape[-1] != 4 or not np.all(np.isfinite(params)):
        raise InputError("params: expected finite (teff, logg, mh, alpha) rows")
    if np.any(params[:, 0] <= 0):
        raise InputError("params: teff must be > 0 K")
    prep = _prepared(wave, resolution, model)
    return _spectrum(_NumpyOps(), wave, params, resolution, model, prep, prep.groups)


def synth_spectrum(wave, teff, logg, mh, alpha=0.0, resolution=20000, model=SynthModel()):
    """Spectrum with continuum at one parameter set (NumPy).

    wave : (n,) A, air, increasing. teff : K; logg : dex (cgs); mh, alpha : dex.
    Returns flux, cont : float64 (n,) F_lambda in erg s^-1 cm^-2 A^-1; flux = cont x normalised.
    """
    flux, cont = synth_batch(wave, [[teff, logg, mh, alpha]], resolution, model)
    return flux[0], cont[0]


def synth_spectrum_torch(wave, params, resolution=20000, model=SynthModel()):
    """The same spectrum in PyTorch, differentiable w.r.t. params.

    wave : tensor (n,) A. params : tensor (..., 4) = (teff, logg, mh, alpha).
    Returns flux, cont : tensors (..., n), computed in float64 (cast back to params' dtype).
    """
    import torch

    _check_resolution(resolution, minimum=1000)
    _check_model(model)
    wave = torch.as_tensor(wave)
    params = torch.as_tensor(params)
    out_dtype = params.dtype if params.is_floating_point() else torch.float64
    device = params.device
    batch_shape = params.shape[:-1]
    p = params.reshape(-1, 4).to(torch.float64)
    w = wave.to(device=device, dtype=torch.float64)
    prep = _prepared(w, resolution, model)
    ops = _TorchOps(torch, device)
    flux, cont = _spectrum(ops, w, p, resolution, model, prep, prep.torch_groups(torch, device))
    n = w.shape[0]
    return (flux.reshape(*batch_shape, n).to(out_dtype), cont.reshape(*batch_shape, n).to(out_dtype))


# --- Faddeeva function in torch (Weideman 1994) ---------------------------------------------------
_WEIDEMAN_N = 32


@functools.lru_cache(maxsize=None)
def _weideman_coefficients(n_terms=_WEIDEMAN_N):
    """Weideman (1994, SIAM J. Numer. Anal. 31, 1497) expansion coefficients, highest power first."""
    m = 2 * n_terms
    k = np.arange(-m + 1, m)
    big_l = math.sqrt(n_terms / math.sqrt(2.0))
    t = big_l * np.tan(k * np.pi / m / 2.0)
    f = np.concatenate([[0.0], np.exp(-t**2) * (big_l**2 + t**2)])
    a = np.real(np.fft.fft(np.fft.fftshift(f))) / (2 * m)
    return big_l, tuple(np.flipud(a[1:n_terms + 1]))


def faddeeva_torch(z):
    """Faddeeva function w(z) = exp(-z^2) erfc(-iz) for Im z > 0, torch (complex128), differentiable.

    Weideman's N = 32 rational expansion: w(z) = 2 p(Z) / (L - iz)^2 + 1/sqrt(pi) / (L - iz),
    Z = (L + iz)/(L - iz), p a polynomial of degree 31. Smooth, relative error of Re w < 1e-7 for
    Im z >= 1e-4 (tested against scipy.special.wofz). Not valid for Im z < 0.
    """
    import torch

    z = torch.as_tensor(z)
    if not z.is_complex():
        z = z.to(torch.complex128)
    big_l, coeffs = _weideman_coefficients()
    iz = 1j * z
    denom = big_l - iz
    zz = (big_l + iz) / denom
    p = torch.full_like(zz, coeffs[0])
    for c in coeffs[1:]:
        p = p * zz + c
    return 2.0 * p / denom**2 + (1.0 / SQRT_PI) / denom


def voigt_torch(v, a):
    """Voigt function H(a, v) = Re w(v + i a) (a > 0), torch float64, differentiable in v and a."""
    import torch

    v = torch.as_tensor(v, dtype=torch.float64)
    a = torch.as_tensor(a, dtype=torch.float64, device=v.device)
    v, a = torch.broadcast_tensors(v, a)
    return faddeeva_torch(torch.complex(v, a)).real


# --- checks and grid ----------------------------------------------------------------------------
_MODEL_LIMITS = {  # field -> (lowest, highest, lowest allowed?)
    "xi_kms": (0.0, 50.0, True),
    "vdw_enhancement": (0.0, 100.0, True),
    "gravity_coupling": (0.0, 10.0, False),
    "logg_pivot": (-5.0, 10.0, True),
    "tau_layer": (0.0, 10.0, False),
    "line_formation_factor": (0.0, 10.0, False),
    "max_depth": (0.0, 1.0, False),
    "saturation_dilution": (0.0, 1.0, True),
    "paschen_stark_scale": (0.0, 100.0, True),
    "oi_nlte_base": (-5.0, 5.0, True),
    "oi_nlte_slope": (-5.0, 5.0, True),
    "tio_scale": (0.0, 1e6, True),
}


def _check_model(model):
    if not isinstance(model, SynthModel):
        raise InputError(f"model: expected a SynthModel, got {type(model).__name__}")
    for name, (lo, hi, lo_ok) in _MODEL_LIMITS.items():
        v = getattr(model, name)
        ok = isinstance(v, (int, float)) and math.isfinite(v) and (lo <= v if lo_ok else lo < v) and v <= hi
        if not ok or (name == "max_depth" and v >= 1.0):
            raise InputError(f"model.{name}: expected a number in {'[' if lo_ok else '('}{lo:g}, {hi:g}"
                             f"{')' if name == 'max_depth' else ']'}, got {v!r}")
    return model


def _check_resolution(resolution, minimum):
    try:
        r = float(resolution)
    except (TypeError, ValueError):
        raise InputError(f"resolution: expected a number R, got {resolution!r}") from None
    if not (math.isfinite(r) and r >= minimum):
        raise InputError(f"resolution: expected R >= {minimum}, got {resolution!r}")
    return r


def _check_wave_range(wave_range):
    from .gridio import parse_wave_range

    lo, hi = parse_wave_range(wave_range)
    if lo < 2500.0 or hi > 15000.0:
        raise InputError(f"wave_range: the synth model covers 2500-15000 A (H^- fit), got [{lo}, {hi}]")
    return lo, hi


def synth_axes(ranges, margin=1):
    """Grid nodes of the synth source for ``ranges`` (see :func:`build_synth_grid`)."""
    from .gridio import source_nodes

    return source_nodes(ranges, "synth", margin)


def build_synth_grid(path, ranges, resolution=20000, wave_range=(7000.0, 9000.0), margin=1,
                     model=SynthModel(), progress=False, batch_size=64):
    """Compute the raw grid with the embedded model and write it (HDF5, :mod:`pfslogg.gridio`).

    ranges : mapping parameter -> [lo, hi] over ``T_eff, log_g, M_H, a_M`` (a missing parameter
        takes the whole synth axis, a single number a fixed value); nodes from
        :func:`pfslogg.gridio.axis_nodes` on :data:`SYNTH_AXES` plus ``margin`` nodes each side.
    resolution : R of the raw grid (>= 20000, the raw grid must be much sharper than the instrument).
    wave_range : (lo, hi) A. model : :class:`SynthModel` (stored as JSON in the attrs).
    Returns the output path.
    """
    from .gridio import GridWriter

    resolution = _check_resolution(resolution, minimum=20000)
    _check_model(model)
    axes = synth_axes(ranges, margin)
    wave = raw_wave(resolution, wave_range)
    grids = np.meshgrid(*(axes[p] for p in PARAMS), indexing="ij")
    shape = grids[0].shape
    params = np.stack([g.ravel() for g in grids], axis=-1)  # (N, 4) in C order of the grid
    attrs = {
        "source": "synth",
        "kind": "raw",
        "resolution": int(resolution) if float(resolution).is_integer() else resolution,
        "model": json.dumps(dataclasses.asdict(model), sort_keys=True),
        "wave_rule": "log-uniform, wave_k = lo (1 + 1/(2R))^k",
        "flux": "F_lambda = pi B_lambda(T_c) x normalised spectrum, erg s^-1 cm^-2 A^-1",
        "pseudo_seed": PSEUDO_SEED,
    }
    from ..progress import progress as _progress

    bar = _progress(total=len(params), desc="synth grid", unit="spec") if progress else None
    with GridWriter(path, wave, axes, attrs) as w:
        for start in range(0, len(params), batch_size):
            chunk = params[start:start + batch_size]
            flux, cont = synth_batch(wave, chunk, resolution, model)
            for k in range(len(chunk)):
                w.write(np.unravel_index(start + k, shape), flux[k], cont[k])
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return path


def equivalent_width(wave, flux, cont, center, half_width):
    """Equivalent width (A) of the absorption in [center - half_width, center + half_width]:
    the trapezoid integral of 1 - flux/cont over the pixels inside the window."""
    wave = np.asarray(wave, dtype=float)
    sel = (wave >= center - half_width) & (wave <= center + half_width)
    if sel.sum() < 2:
        raise InputError(f"equivalent_width: fewer than 2 pixels within {center} +- {half_width} A")
    depth = 1.0 - np.asarray(flux, dtype=float)[sel] / np.asarray(cont, dtype=float)[sel]
    return float(np.sum(0.5 * (depth[1:] + depth[:-1]) * np.diff(wave[sel])))
