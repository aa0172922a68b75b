"""MkDocs hook: links to repository files outside ``docs/`` (the examples' sources, the README)
become plain text on the site; they stay links when the Markdown is read in the repository,
where ``tests/test_docs.py`` checks that they resolve."""

from __future__ import annotations

import posixpath
import re
from typing import Any

LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(([^)#\s]+)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def unlink_outside(match: re.Match[str]) -> str:
        text, target = match.groups()
        if "://" in target or target.startswith(("/", "mailto:")):
            return match.group(0)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(page.file.src_uri), target))
        return text if resolved.startswith("../") else match.group(0)

    return LINK.sub(unlink_outside, markdown)
