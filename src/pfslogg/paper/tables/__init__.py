"""Tables: one small builder per table, each reading exactly the results files it is given (the
rule's inputs) and referring to values only through the macros of numbers.tex, so that a table and
the text cannot disagree.

A table recognises its files by their top-level ``kind`` (``dataset``, ``bayes``, ``fisher``,
``calibration``, ``estimator``, ``experiment``, ``crlb_validation``, ``snr_sweep``,
``efficiency``), never by which keys they have; a file of a kind
the table does not read, or the wrong number of files of a kind, is an
:class:`~pfslogg.errors.InputError` naming the table. :data:`TABLES` maps each table's name to its
builder; :func:`write_table` writes one by name.

Modules, one per track, each documenting its tables: common (the registry, reading the results
files, the tabular and its cells), data (``datasets``), track_c (``ceiling``, ``calibration``,
``crlb_validation``, ``snr_sweep``, ``efficiency_by_snr``), track_f (``r2_by_snr``,
``leaderboard``, ``errors``) and track_a (``scaling``, ``ablations``). A builder registers itself
with ``@table("name")`` (common); every module of this package is imported here, so a new track
adds a module and nothing else.

Each writes a booktabs + siunitx ``tabular`` (no float): the includer sets ``\\caption`` and
``\\label`` and fits wide tables to the text width (``\\fittable`` of paper/preamble.tex)::

    \\begin{table}\\centering \\caption{...}\\label{tab:r2_by_snr}
    \\fittable{generated/tables/r2_by_snr}\\end{table}
"""

import importlib
import pkgutil
from pathlib import Path

from ...atomic import write_text
from ...errors import InputError
from ..numbers import MacroLookup, collect_numbers
from .common import TABLES, table_sources, tex_escape

__all__ = ["TABLES", "table_tex", "tex_escape", "write_table"]

# Every module of this package registers its tables (@table of .common) when it is imported.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def table_tex(name, results_dir, files, numbers=None, root=None):
    """The text of table ``name`` (see :data:`TABLES`) from exactly the results ``files`` (under
    ``results_dir``, given as :func:`~pfslogg.paper.numbers.collect_numbers` takes them).

    ``numbers``: the :class:`~pfslogg.paper.numbers.Number` list whose macros the table cites
    (default: those of ``files``); ``root``: the workflow root that file paths in numbers.tex are
    relative to (default: the folder holding ``results_dir``)."""
    builder = TABLES.get(name)
    if builder is None:
        raise InputError(f"unknown table {name!r}; the tables are {', '.join(sorted(TABLES))}")
    files = list(files or [])
    if not files:
        raise InputError(f"table {name}: no results files given")
    results_dir = Path(results_dir)
    root = Path(root) if root is not None else results_dir.resolve().parent
    sources = table_sources(results_dir, files, root)
    if numbers is None:
        numbers = collect_numbers(results_dir, root=root, files=[root / s.file for s in sources])
    return builder(sources, MacroLookup(numbers))


def write_table(name, results_dir, out_path, files, numbers=None, root=None):
    """Write table ``name`` (see :func:`table_tex`) to ``out_path``; return its text."""
    text = table_tex(name, results_dir, files, numbers=numbers, root=root)
    write_text(out_path, text)
    return text
