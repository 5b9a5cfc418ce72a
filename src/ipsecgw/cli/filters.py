"""Output filters: `show ... | include REGEX`, as IOS and JUNOSe users type them.

A `|` that starts a word outside quotes ends the command; what follows is
one filter applied to the command's output, line by line:

- `include REGEX`: the lines REGEX matches (Python `re.search` syntax);
- `exclude REGEX`: the lines it does not match;
- `begin REGEX`: from the first line it matches to the end;
- `count`: how many lines there are.

The filter word may be abbreviated (`| i up`); REGEX is the rest of the line
as typed from its first non-blank, blanks included (trailing ones too, as
on IOS). Only commands that print (show, `write terminal`,
`do show ...`) take a filter: on another command it is refused before the
command runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.tokens import MAX_LINE_LENGTH

#: Filter keywords and their `?` help.
FILTERS = {
    "begin": "Show output from the first line that matches",
    "count": "Count the output lines",
    "exclude": "Show output lines that do not match",
    "include": "Show output lines that match",
}


class FilterError(ValueError):
    """The filter part of a line is wrong; `column` is where the '^' goes."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True)
class OutputFilter:
    kind: str
    pattern: re.Pattern[str] | None
    column: int  # where the `|` was typed

    def apply(self, text: str) -> str:
        lines = text.splitlines()
        if self.kind == "count":
            return f"Count: {len(lines)} line{'' if len(lines) == 1 else 's'}"
        assert self.pattern is not None
        search = self.pattern.search
        if self.kind == "include":
            kept = [line for line in lines if search(line)]
        elif self.kind == "exclude":
            kept = [line for line in lines if not search(line)]
        else:
            start = next((i for i, line in enumerate(lines) if search(line)), len(lines))
            kept = lines[start:]
        return "\n".join(kept)


def pipe_column(line: str) -> int | None:
    """The column of the `|` that starts a filter, skipping quoted words as `tokenize` does."""
    if len(line) > MAX_LINE_LENGTH:
        return None  # refused by the tokenizer anyway
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] == "|":
            return i
        if line[i] == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" and line[i + 1 : i + 2] in ('"', "\\") else 1
            i += 1
        while i < n and not line[i].isspace():
            i += 1
    return None


def filter_words(line: str, column: int) -> tuple[str, int, str]:
    """After the `|`: the filter word, its column and the rest of the line."""
    start = column + 1
    while start < len(line) and line[start].isspace():
        start += 1
    end = start
    while end < len(line) and not line[end].isspace():
        end += 1
    return line[start:end], start, line[end:].lstrip()


def split_filter(line: str) -> tuple[str, OutputFilter | None]:
    """The command part of `line` and its output filter (FilterError if that is wrong)."""
    column = pipe_column(line)
    if column is None:
        return line, None
    word, word_column, rest = filter_words(line, column)
    if not word:
        raise FilterError("Expected a filter: begin, count, exclude or include", column)
    kinds = [kind for kind in FILTERS if kind.startswith(word.lower())]
    if len(kinds) != 1:
        raise FilterError("Expected a filter: begin, count, exclude or include", word_column)
    kind = kinds[0]
    if kind == "count":
        if rest:
            at = line.index(rest, word_column + len(word))
            raise FilterError("count takes no regular expression", at)
        return line[:column], OutputFilter(kind, None, column)
    if not rest:
        raise FilterError(f"Expected a regular expression after {kind}", word_column)
    try:
        pattern = re.compile(rest)
    except re.error as exc:
        raise FilterError(f"Invalid regular expression: {exc.msg}", word_column) from exc
    return line[:column], OutputFilter(kind, pattern, column)
