"""Documents: which files each paper document reads.

:func:`document_sources` lists every file a document reads (its ``\\input`` tree, generated
numbers and tables, figures, bibliography): the workflow's input function for rule
``compile_paper``. :func:`paper_sources` lists the hand-written LaTeX that
:mod:`pfslogg.paper.guard` checks; :func:`mask_comments` blanks TeX comments (both modules read
LaTeX through it).
"""

import re
from pathlib import Path


def mask_comments(text):
    """``text`` with every TeX comment (unescaped ``%`` to end of line) blanked, same length."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "%":
            while i < n and text[i] != "\n":
                out[i] = " "
                i += 1
            continue
        i += 1
    return "".join(out)


def paper_sources(paper_dir):
    """The hand-written LaTeX: ``paper/*.tex`` and ``paper/sections/**/*.tex``, sorted."""
    paper_dir = Path(paper_dir)
    return sorted([*paper_dir.glob("*.tex"), *(paper_dir / "sections").rglob("*.tex")])


# Commands whose argument names a file the document reads, and the extension they default to.
_INPUT_CMDS = {"input": ".tex", "include": ".tex", "fittable": ".tex", "includegraphics": ".pdf",
               "bibliography": ".bib"}
_INPUT_RE = re.compile(r"\\(%s)\*?\s*(?:\[[^\]]*\])?\s*\{([^}]*)\}" % "|".join(_INPUT_CMDS))


def document_sources(paper_dir, doc):
    """Every file the document ``<paper_dir>/<doc>.tex`` reads, as workflow paths, in order of
    first use: its hand-written LaTeX (followed through ``\\input``/``\\include``), the generated
    numbers and tables (``generated/...``, also via ``\\fittable``), the figures
    (``\\includegraphics{figures/x.pdf}``: figures are named by their workflow path) and the
    bibliography. ``\\jobname`` stands for ``doc``. Files that do not exist yet (generated ones)
    are listed all the same; a hand-written file that is missing is listed too, so that the
    build says which one. Paths are ``<paper_dir>/...`` except figures (workflow root)."""
    paper_dir = Path(paper_dir)
    base = paper_dir.as_posix().rstrip("/")
    out, seen_tex = [], set()

    def add(path):
        if path not in out:
            out.append(path)

    def visit(rel):
        path = f"{base}/{rel}"
        add(path)
        if path in seen_tex or rel.startswith("generated/"):
            return
        seen_tex.add(path)
        file = paper_dir / rel
        if not file.is_file():
            return
        text = mask_comments(file.read_text())
        for m in _INPUT_RE.finditer(text):
            cmd = m.group(1)
            for name in m.group(2).split(",") if cmd == "bibliography" else [m.group(2)]:
                name = name.strip().replace("\\jobname{}", doc).replace("\\jobname", doc)
                if not name or "#" in name or "\\" in name:
                    continue  # a macro's parameter (\\input{#1}) or a name made by macros
                if not Path(name).suffix:
                    name += _INPUT_CMDS[cmd]
                if cmd == "includegraphics":
                    add(name)
                elif cmd == "bibliography":
                    add(f"{base}/{name}")
                else:
                    visit(name)

    visit(f"{doc}.tex")
    return out

