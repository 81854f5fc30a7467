"""The report as a document: headings, paragraphs, lists, tables and images, rendered to Markdown and HTML."""
from __future__ import annotations

import html
import re

import pandas as pd

TITLE = "paddle-cnns: classic CNNs and the article's trick CNN, measured"


class Doc:
    """Headings, paragraphs, lists, tables and images, rendered to GitHub Markdown and to HTML.

    Text may use `code` and **bold**, nothing else, so both renderings stay simple and exact.
    """

    def __init__(self):
        self.blocks: list[tuple] = []

    def h(self, level: int, text: str):
        self.blocks.append(("h", level, text))

    def p(self, text: str):
        self.blocks.append(("p", text))

    def ul(self, items: list[str]):
        if items:
            self.blocks.append(("ul", list(items)))

    def table(self, df: pd.DataFrame, right: tuple[str, ...] = ()):
        """df of strings; columns named in `right` are right-aligned (numbers)."""
        self.blocks.append(("table", df.astype(str).reset_index(drop=True), tuple(right)))

    def img(self, file: str, alt: str):
        self.blocks.append(("img", file, alt))

    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            if b[0] == "h":
                out.append("#" * b[1] + " " + b[2])
            elif b[0] == "p":
                out.append(b[1])
            elif b[0] == "ul":
                out.append("\n".join(f"- {item}" for item in b[1]))
            elif b[0] == "table":
                # per column: DataFrame.map is pandas 2.1+, its old name applymap is gone in 3.0
                df = b[1].apply(lambda col: col.map(lambda v: v.replace("|", "\\|")))
                align = ["right" if c in b[2] else "left" for c in df.columns]
                out.append(df.to_markdown(index=False, disable_numparse=True, colalign=align))
            elif b[0] == "img":
                out.append(f"![{b[2]}]({b[1]})")
        return "\n\n".join(out) + "\n"

    def html(self) -> str:
        body = []
        for b in self.blocks:
            if b[0] == "h":
                body.append(f"<h{b[1]}>{_inline(b[2])}</h{b[1]}>")
            elif b[0] == "p":
                body.append(f"<p>{_inline(b[1])}</p>")
            elif b[0] == "ul":
                body.append("<ul>\n" + "\n".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "\n</ul>")
            elif b[0] == "table":
                df, right = b[1], b[2]
                head = "".join(f"<th>{html.escape(c)}</th>" for c in df.columns)
                rows = "\n".join(
                    "<tr>" + "".join(f"<td{' class=num' if c in right else ''}>{html.escape(v)}</td>"
                                     for c, v in zip(df.columns, r)) + "</tr>"
                    for r in df.itertuples(index=False))
                body.append(f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>")
            elif b[0] == "img":
                body.append(f'<p><img src="{html.escape(b[1])}" alt="{html.escape(b[2])}"></p>')
        return HTML.format(title=html.escape(TITLE), body="\n".join(body))


HTML = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: "DejaVu Sans", Verdana, sans-serif; font-size: 14px; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }}
td.num {{ text-align: right; white-space: nowrap; }}
tbody tr:nth-child(even) {{ background: #fafafa; }}
img {{ max-width: 100%; }}
code {{ background: #f3f3f3; padding: 0 3px; }}
</style>
</head>
<body>
{body}
</body>
</html>
"""


def _inline(text: str) -> str:
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
