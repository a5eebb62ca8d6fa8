"""Names from the database and the file system, made harmless to print for people and CI logs.

A row, table or file name can hold anything: ESC sequences that clear a terminal or plant a
hyperlink, CR/LF that start a line of their own, bidi overrides that reorder what is read;
and in a GitHub Actions log the runner executes `::command::` at the start of a line (after
leading whitespace) and the legacy `##[command]` anywhere in one. `shown()` makes all of them
visible instead. Backslashes are left alone, so a name that spells `\\x1b` reads like one that
holds ESC: the JSON output (`json_safe`) is the exact form.
"""

from __future__ import annotations

import re
import unicodedata

# Control (C0, DEL, C1), format (bidi overrides and isolates, zero-width characters, BOM),
# lone surrogates (undecodable file names) and the Unicode line and paragraph separators.
UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# `::` where a line could start with it: at the start of the text or after whitespace
# (GitHub's runner trims leading whitespace; textwrap breaks lines only at whitespace).
_COMMAND_START = re.compile(r"(?:^|(?<=\s))::")


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: object) -> str:
    """`text` with every character that acts instead of showing written as a visible escape
    (`\\x1b`, `\\n`, `\\u202e`), and `::`/`##[` broken up (`:\\x3a`, `#\\x23[`)."""
    value = str(text)
    if value.isprintable() and "::" not in value and "##[" not in value:
        return value  # the common case, without a look at each character
    value = "".join(
        _escape(c) if not c.isprintable() and unicodedata.category(c) in UNSAFE_CATEGORIES else c
        for c in value
    )
    return _COMMAND_START.sub(":\\\\x3a", value).replace("##[", "#\\x23[")


def sql_lines(statement: str, vendor: str = "") -> list[str]:
    """A SQL statement as display lines: its own line breaks stay, a line break inside a quoted
    literal or identifier (a name's) is shown escaped like everything else `shown()` escapes."""
    lines: list[str] = []
    current: list[str] = []
    quote = ""
    backslash = False
    for char in statement:
        if quote:
            if backslash:
                backslash = False
            elif char == "\\" and vendor == "mysql" and quote != "`":
                backslash = True  # MySQL strings escape with backslashes
            elif char == quote:
                quote = ""  # a doubled quote closes and reopens: the same state
        elif char in "'\"`":
            quote = char
        elif char == "\n":
            if current and current[-1] == "\r":
                current.pop()
            lines.append("".join(current))
            current = []
            continue
        current.append(char)
    if current or not lines:
        lines.append("".join(current))
    return [shown(line) for line in lines]


def json_safe(text: str) -> str:
    """JSON text that decodes to the same values: `##[` only occurs inside JSON strings, where
    `#\\u0023[` is the same string, and GitHub's runner would execute it anywhere in a line."""
    return text.replace("##[", "#\\u0023[")
