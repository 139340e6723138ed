"""The lists inside a passage: their items in order, their lead-in and the labels above them.

An answer to "what are the advantages of X?" is a list the documents already wrote
("闭源模式 › 优点：1. … 2. … 3. …"); quoting three scattered sentences of it loses items
and order. Lists are read from the passage's Markdown at answer time (a passage is a few
hundred characters), so the index needs nothing new.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from knowledge.sentences import clean_markup, list_label

ITEM = re.compile(r"^(\s*)(?:[-*+]\s+|\d+[.)、]\s*)(.+)$")
FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass
class ListBlock:
    """Consecutive items at one indentation (blank lines between them allowed)."""

    lead: str  # the line introducing the list ("优点：", "…以下几个方面："), cleaned; "" if none
    labels: tuple[str, ...]  # enclosing items' labels, outermost first ("开源模式",)
    items: list[str] = field(default_factory=list)  # cleaned item texts, in order

    def describes(self) -> str:
        """Everything that says what the list is about: labels and lead."""
        return " ".join([*self.labels, self.lead])


def _label(text: str) -> str:
    """An item's label: its text before the first colon ("开源模式" of "**开源模式**：")."""
    return re.split(r"[：:]", text, maxsplit=1)[0].strip()


def list_blocks(text: str) -> list[ListBlock]:
    """Every list of the passage, outside code fences, nested lists as blocks of their own.

    A label line directly followed by another ("**闭源模式**：" then "**优点**：") heads the
    lists after it, until a plain paragraph or the next such pair: flat documents write
    "closed source › advantages" that way instead of nesting.
    """
    blocks: list[ListBlock] = []
    open_blocks: dict[int, ListBlock] = {}  # indentation -> the block being filled there
    parents: list[tuple[int, str]] = []  # (indentation, label) of enclosing items
    lead, heading_label, previous_label, in_fence = "", "", "", False
    for line in text.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence or not line.strip() or line.lstrip().startswith("#"):
            continue
        match = ITEM.match(line)
        if not match:
            indent = len(line) - len(line.lstrip())
            open_blocks = {i: b for i, b in open_blocks.items() if i < indent}
            label = list_label(line)
            if label is not None and previous_label:
                heading_label = previous_label
            elif label is None and indent == 0:
                heading_label = ""
            lead, previous_label = clean_markup(line), label or ""
            continue
        previous_label = ""
        indent, item = len(match.group(1)), clean_markup(match.group(2))
        parents = [(i, label) for i, label in parents if i < indent]
        open_blocks = {i: b for i, b in open_blocks.items() if i <= indent}
        block = open_blocks.get(indent)
        if block is None:
            above = tuple(label for _, label in parents)
            block = ListBlock(lead=lead, labels=((heading_label,) if heading_label and not above else ()) + above)
            open_blocks[indent] = block
            blocks.append(block)
            lead = ""
        block.items.append(item)
        parents.append((indent, _label(item)))
    return blocks
