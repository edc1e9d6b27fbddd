"""Paper machinery: every reported number becomes a LaTeX macro; tables use the macros; a guard
keeps hand-typed results out of the LaTeX (DESIGN.md section 5).

* :mod:`~pfslogg.paper.numbers`: macro names, precision, numbers.tex and its index;
* :mod:`~pfslogg.paper.tables`: the generated tables, by name (:data:`TABLES`, :func:`write_table`);
* :mod:`~pfslogg.paper.sources`: which files each document reads;
* :mod:`~pfslogg.paper.guard`: no hand-typed result, no undefined result macro.

The command line is ``python -m pfslogg`` (``collect-numbers``, ``tabulate``, ``check-paper``).
"""

from .guard import (RESULT_MACRO_PREFIXES, Finding, check_document, check_paper, check_paper_cli,
                    defined_macros, find_hand_typed_numbers, find_undefined_macros)
from .numbers import (PRECISION_RULES, MacroLookup, Number, camel_words, collect_numbers,
                      format_value, index_word, load_results, numbers_index, numbers_tex,
                      results_files, spell_int, write_numbers_tex)
from .sources import document_sources, mask_comments, paper_sources
from .tables import TABLES, table_tex, tex_escape, write_table

__all__ = [
    "RESULT_MACRO_PREFIXES", "Finding", "check_document", "check_paper", "check_paper_cli",
    "defined_macros", "find_hand_typed_numbers", "find_undefined_macros",
    "PRECISION_RULES", "MacroLookup", "Number", "camel_words", "collect_numbers", "format_value",
    "index_word", "load_results", "numbers_index", "numbers_tex", "results_files", "spell_int",
    "write_numbers_tex",
    "document_sources", "mask_comments", "paper_sources",
    "TABLES", "table_tex", "tex_escape", "write_table",
]
