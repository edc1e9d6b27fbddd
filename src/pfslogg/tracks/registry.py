"""The one registry of what each paper track makes: figures, tables, its document's results and its target.

A track is entries, never a branch on its letter: :func:`track` registers what the track reads
and writes, :func:`figure` and :func:`table` each artefact with the track it belongs to, the results
files it reads (a function of the configuration), its caption for the HTML report and, for a figure,
the parameters it is drawn with. :mod:`pfslogg.workflow` (paths of every job, target inputs),
:mod:`pfslogg.config` (the experiments a track needs) and the Snakefile read these tables; a new
track adds a module to :mod:`pfslogg.tracks` and nothing else.
"""

from dataclasses import dataclass, field
from typing import Callable

FIGURES = {}   # name -> Figure
TABLES = {}    # name -> Table
TRACKS = {}    # letter -> Track


def _none(cfg):
    return []


@dataclass(frozen=True)
class Figure:
    """A figure (drawn by ``pfslogg.plots.FIGURES[name]``)."""

    name: str
    track: str
    inputs: Callable          # cfg -> results files it reads
    caption: str              # for the HTML report (snakemake --report)
    params: Callable = None   # cfg -> parameters besides the confidence level


@dataclass(frozen=True)
class Table:
    """A LaTeX table (built by ``pfslogg.paper.tables.TABLES[name]``); ``track`` None: shared."""

    name: str
    track: str
    inputs: Callable
    caption: str


@dataclass(frozen=True)
class Track:
    """A paper track: its experiments (config ``experiments.<name>``, required), the rules of its own
    without wildcards (their results: ``results``), the results its document's text prints
    (``text``; its tables add their own), and the checks of its config keys (``check(cfg, where)``)."""

    letter: str
    title: str
    experiments: tuple = ()
    rules: tuple = ()
    results: Callable = _none
    text: Callable = _none
    check: Callable = None
    extra_jobs: Callable = field(default=None)   # cfg -> [(rule, wildcards)] of rules with wildcards
    cells: Callable = _none   # cfg -> cells (variant, noise tag, size, seed) it reads outside experiments
    params: dict = field(default_factory=dict)   # rule -> (cfg -> its parameter block), for rules of its own

    @property
    def doc(self):
        return f"track_{self.letter}"


def figure(name, track, inputs, caption, params=None):
    FIGURES[name] = Figure(name, track, inputs, caption, params)


def table(name, track, inputs, caption):
    TABLES[name] = Table(name, track, inputs, caption)


def track(letter, title, **kw):
    TRACKS[letter] = Track(letter, title, **kw)
    return TRACKS[letter]
