"""Splitting a command line into words, and quoting a value so it splits back.

Words are separated by blanks. A word that starts with a double quote runs
to the next unescaped double quote; inside it, backslash escapes a double
quote or a backslash. This is how values with blanks (an ASN.1 DN
"C=US, O=Example", a key phrase) are typed and saved. A word that does not
start with a quote is taken literally, backslashes and inner quotes included.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The longest command line; the longest real one (a DN, a file name) is
#: far shorter, and refusing before reading bounds the work a line can cost.
MAX_LINE_LENGTH = 4096


@dataclass(frozen=True)
class Token:
    """One word: its value and where it was typed (for the '^' marker)."""

    text: str
    start: int  # column of its first character in the line
    end: int  # column just past its last character


class TokenizeError(ValueError):
    """The line cannot be split (an unterminated quote); `column` points at it."""

    def __init__(self, message: str, column: int | None) -> None:
        super().__init__(message)
        self.column = column


def tokenize(line: str) -> list[Token]:
    if len(line) > MAX_LINE_LENGTH:
        raise TokenizeError(f"Line longer than {MAX_LINE_LENGTH} characters", None)
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        start = i
        if line[i] != '"':
            while i < n and not line[i].isspace():
                i += 1
            tokens.append(Token(line[start:i], start, i))
            continue
        i += 1
        chars: list[str] = []
        while i < n and line[i] != '"':
            if line[i] == "\\" and i + 1 < n and line[i + 1] in '"\\':
                i += 1
            chars.append(line[i])
            i += 1
        if i >= n:
            raise TokenizeError("Unterminated quoted string", start)
        i += 1
        if i < n and not line[i].isspace():
            raise TokenizeError("Blank expected after closing quote", i)
        tokens.append(Token("".join(chars), start, i))
    return tokens


def quote(value: str) -> str:
    """`value` as one word that `tokenize` gives back unchanged."""
    # A word that starts with `|` would read as an output filter (cli.filters).
    if value and value[0] not in '"|' and not any(c.isspace() for c in value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'
