"""Table cells and tables for humans: every markdown, LaTeX and console table of the project formats
its numbers here, so one value reads the same in each (3 decimals, no "-0.000", one mark for a
value that does not exist).

Cells are strings; `to_markdown` and `to_latex` take a DataFrame of already formatted cells.
"""

from pathlib import Path

import pandas as pd

from spiralarms import atomic

MISSING = "–"  # a value that does not exist (no interval, metric not computed, class absent)


def is_missing(value) -> bool:
    return value is None or bool(pd.isna(value))


def number(value, digits=3) -> str:
    """`value` to `digits` decimals; a value that rounds to zero reads 0.000, never -0.000."""
    if is_missing(value):
        return MISSING
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def signed(value, digits=3) -> str:
    """A difference with its sign (+0.120, -0.050); zero reads +0.000."""
    if is_missing(value):
        return MISSING
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if text.startswith("-") and float(text) == 0 else text


def count(value) -> str:
    return MISSING if is_missing(value) else f"{int(value)}"


def with_interval(value, low, high, digits=3) -> str:
    """'0.812 [0.790, 0.833]', or the value alone without both bounds."""
    if is_missing(value) or is_missing(low) or is_missing(high):
        return number(value, digits)
    return f"{number(value, digits)} [{number(low, digits)}, {number(high, digits)}]"


def difference_with_interval(value, low, high, digits=3) -> str:
    """'+0.120 [+0.010, +0.230]': a difference and its interval, signed."""
    if is_missing(value):
        return MISSING
    if is_missing(low) or is_missing(high):
        return signed(value, digits)
    return f"{signed(value, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


def mean_std(mean, std, digits=3) -> str:
    """'0.812 ± 0.010', or the mean alone when there is no spread (one run)."""
    return number(mean, digits) if is_missing(std) else f"{number(mean, digits)} ± {number(std, digits)}"


def p_value(value) -> str:
    """Two significant digits below 0.001 (4.2e-05), else 3 decimals."""
    if is_missing(value):
        return MISSING
    return f"{value:.2g}" if value < 0.001 else number(value)


def to_markdown(table) -> str:
    """GitHub markdown table of already formatted cells."""
    header = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    for row in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "±": r"$\pm$", MISSING: "--"}


def latex_escape(text) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def to_latex(table) -> str:
    """booktabs tabular of already formatted cells (needs \\usepackage{booktabs})."""
    spec = "".join("r" if _is_numeric_column(table[c]) else "l" for c in table.columns)
    lines = [f"\\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def _is_numeric_column(column):
    return all(str(v)[:1].isdigit() or str(v)[:1] in "-+" + MISSING for v in column)


def write_csv_and_markdown(table, out_dir, stem: str, markdown: str) -> list:
    """<stem>.csv (every column, full precision) and <stem>.md (`markdown`) in `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, md = out_dir / f"{stem}.csv", out_dir / f"{stem}.md"
    with atomic.replacing(csv) as partial:
        table.to_csv(partial, index=False)
    atomic.write_text(md, markdown)
    return [csv, md]
