"""report.html: one self-contained page per run and per comparison, to open from disk and pass around.

The pictures are inline (base64 PNG), the style is inline, and nothing refers to the network, so the
page reads the same on a laptop without access. A run's page holds its summary in words (the
terminal's table and what made the slow trials slow), its pictures, its slowest trials with their
breakdown, and its resolved scenario; a comparison's page holds the comparison table, the verdicts
and its pictures.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

_STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 2em; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
table { border-collapse: collapse; font-size: 0.85em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.failed td { color: #c000c0; }
img { max-width: 100%; display: block; margin: 1em 0; }
"""


def page(title: str, subtitle: str, sections: list[tuple[str, str]]) -> str:
    """A whole page: its title, subtitle and (heading, body HTML) sections."""
    body = "".join(f'<section id="{_anchor(heading)}"><h2>{html.escape(heading)}</h2>{content}</section>\n'
                   for heading, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head>\n<body><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p>\n"
            f"{body}</body></html>\n")


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def pictures(paths: list[Path]) -> str:
    """The PNGs that exist among `paths`, inline, each captioned by its file name."""
    return "".join(f'<figure><img alt="{path.name}" src="data:image/png;base64,'
                   f'{base64.b64encode(path.read_bytes()).decode()}"><figcaption>{path.name}</figcaption></figure>'
                   for path in paths if path.exists())


def table(header: list[str], rows: list[list[str]], failed: list[bool] | None = None) -> str:
    """A table; rows flagged in `failed` are drawn in the failed trials' colour."""
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join(f'<tr{" class=failed" if failed and failed[i] else ""}>'
                   + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                   for i, row in enumerate(rows))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(heading: str) -> str:
    return "-".join(heading.lower().split())
