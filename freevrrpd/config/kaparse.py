"""keepalived.conf as a tree, for ``freevrrpd --import-keepalived`` (``kaconvert``).

The syntax keepalived(5) describes: words separated by blanks, ``{`` and ``}``
open and close a block, ``#`` and ``!`` start a comment that runs to the end of
the line, a ``"quoted string"`` is one word, and ``include PATTERN`` reads the
files the shell pattern names (relative to the including file) in its place.
Every node keeps its file and line for the comments and messages it leads to.
"""

from __future__ import annotations

import glob
import os
import shlex
from dataclasses import dataclass, field

MAX_INCLUDE_DEPTH = 8  # keepalived's own limit is about as deep
MAX_BYTES = 4 << 20  # as the freevrrpd.conf reader: a file of junk is no config


class KeepalivedError(Exception):
    pass


@dataclass
class Node:
    keyword: str
    args: list[str]
    where: str  # "file:line"
    children: list[Node] = field(default_factory=list)
    block: bool = False

    def find(self, keyword: str) -> list[Node]:
        return [c for c in self.children if c.keyword == keyword]

    def first(self, keyword: str) -> Node | None:
        found = self.find(keyword)
        return found[0] if found else None


def _words(line: str) -> list[str]:
    """A line's words, comments cut, quotes honoured, braces words of their own."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="{}")
    lexer.commenters = "#!"
    lexer.whitespace_split = True
    lexer.wordchars += "/:.-_@%*?[],=+$~"
    try:
        return list(lexer)
    except ValueError as exc:  # an unbalanced quote
        raise KeepalivedError(str(exc)) from None


def _lines(path: str, depth: int) -> list[tuple[str, list[str]]]:
    if depth > MAX_INCLUDE_DEPTH:
        raise KeepalivedError(f"{path}: includes nested deeper than {MAX_INCLUDE_DEPTH}")
    try:
        if os.path.getsize(path) > MAX_BYTES:
            raise KeepalivedError(f"{path}: larger than {MAX_BYTES >> 20} MiB")
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError as exc:
        raise KeepalivedError(f"{path}: {exc.strerror or exc}") from None
    out: list[tuple[str, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = _words(line)
        if words[:1] == ["include"] and len(words) == 2:
            pattern = os.path.join(os.path.dirname(path), words[1])
            for included in sorted(glob.glob(pattern)):
                out += _lines(included, depth + 1)
            continue
        if words:
            out.append((f"{path}:{number}", words))
    return out


def parse(path: str) -> Node:
    """The whole file (and what it includes) under a root node."""
    root = Node("", [], f"{path}:0", block=True)
    stack = [root]
    for where, words in _lines(path, 0):
        current: Node | None = None
        for word in words:
            if word == "{":
                if current is None:  # "{" alone on a line opens the last node's block
                    if not stack[-1].children:
                        raise KeepalivedError(f"{where}: '{{' with nothing before it")
                    current = stack[-1].children[-1]
                current.block = True
                stack.append(current)
                current = None
            elif word == "}":
                if len(stack) == 1:
                    raise KeepalivedError(f"{where}: '}}' without an open block")
                stack.pop()
                current = None
            elif current is None:
                current = Node(word, [], where)
                stack[-1].children.append(current)
            else:
                current.args.append(word)
    if len(stack) > 1:
        raise KeepalivedError(f"{stack[-1].where}: block of {stack[-1].keyword} never closed")
    return root
