"""The consoles every `dig` command prints on. Markup is off: what they print holds provider error
text, report cells and client ids, and Rich would read "[link=...]" or "[/]" in those as markup
(a spoofed link, a crash on a stray closing tag). Styles are given as Text or style= instead."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(markup=False, highlight=False)
errors = Console(stderr=True, markup=False, highlight=False)


def styled(*parts: str | tuple[str, str]) -> Text:
    """A line of plain parts and (text, style) parts, none of it read as markup."""
    return Text.assemble(*parts)
