"""Telemetry values inside Markdown (the weekly export's .md file, Streamlit's `st.markdown` and
widget labels) stay text: never HTML, links, images, code spans they close, or Streamlit's
`:color[...]` directives and `$math$`."""
from __future__ import annotations

import html
import re
from typing import Any

_COMMONMARK = re.compile(r"([\\`*_\[\]|~#!])")
_STREAMLIT = re.compile(r"([\\`*_\[\]|~#!:$])")


def md_text(value: Any, streamlit: bool = False) -> str:
    """HTML is entity-escaped (Markdown passes raw HTML through) and each character that starts
    emphasis, code, a link, an image or a table cell gets a backslash; one line."""
    pattern = _STREAMLIT if streamlit else _COMMONMARK
    text = html.escape(str(value), quote=False).replace("\r", " ").replace("\n", " ")
    return pattern.sub(r"\\\1", text)


def md_code(value: Any) -> str:
    """A code span holding any text: fenced by one more backtick than the longest run inside
    (CommonMark), so a backtick in a service name or request id cannot end it."""
    text = str(value).replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"
