"""The paper's tracks as registry entries (:mod:`.registry`): one module per track, each registering
its figures, tables, document results and target; :mod:`.data` the artefacts the tracks share."""

from .registry import FIGURES, TABLES, TRACKS, Figure, Table, Track, figure, table, track
from . import data, discussion, track_a, track_b, track_c, track_d, track_e, track_f  # noqa: F401,E402  (register their entries)

__all__ = ["FIGURES", "TABLES", "TRACKS", "Figure", "Table", "Track", "figure", "table", "track"]
