#!/usr/bin/env python3
"""Rewrite references to the internal spec ("Spec: 01 §3.5", "(02 §6 Saving messages 7)") in
docstrings, comments and --help texts into links to the user documentation under docs/.

Usage: scripts/spec-refs-to-docs.py [--check] [--dry-run] [PATH ...]   (default: pikku_storage
pikku_testing). `--check` only verifies that every target page and anchor of the mapping exists
in docs/. Lines made longer than 100 characters inside docstrings and comments are re-wrapped;
any other line still too long is listed at the end (fix by hand). Prints how many references
were rewritten in how many files.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MAX_LINE = 100

WF, RUNS = "services/workflows.md", "services/workflow-runs.md"
AIS, AIR, AGENT = "services/ai-storage.md", "services/ai-run-state.md", "services/agent-runs.md"
CH, HUB, DEP = "services/channels.md", "services/eventhub.md", "services/deployments.md"
LAYOUT = "operations.md#storage-layout"

# (spec file, section) -> docs target; a section not listed falls back to its parent, then to
# the file's entry under "".
SECTIONS: dict[tuple[str, str], str] = {
    ("00", ""): "index.md",
    ("00", "4"): "concepts.md#values",
    ("00", "5"): "concepts.md#lifecycle-and-namespaces",
    ("00", "6"): "concepts.md#errors",
    ("00", "7"): "concepts.md#concurrency",
    ("01", ""): WF,
    ("01", "1.3"): f"{WF}#transitions",
    ("01", "1.4"): "concepts.md#values",
    ("01", "3.1"): f"{WF}#runs",
    ("01", "3.2"): f"{WF}#run-state",
    ("01", "3.3"): f"{WF}#steps",
    ("01", "3.4"): f"{WF}#transitions",
    ("01", "3.5"): f"{WF}#claim-and-retry",
    ("01", "3.6"): f"{WF}#graph-primitives",
    ("01", "3.7"): f"{WF}#versions",
    ("01", "3.8"): f"{WF}#locks",
    ("01", "4"): RUNS,
    ("01", "5"): LAYOUT,
    ("01", "6"): "contract.md",
    ("02", ""): AIS,
    ("02", "3"): AIR,
    ("02", "4"): AGENT,
    ("02", "5"): LAYOUT,
    ("02", "6"): "contract.md",
    ("03", ""): CH,
    ("03", "3"): HUB,
    ("03", "4"): DEP,
    ("03", "5"): f"{CH}#who-calls-what",
    ("03", "6"): LAYOUT,
    ("03", "7"): "contract.md",
    ("04", ""): "contract.md",
    ("05", ""): "index.md",
    ("05", "2"): AIR,
    ("05", "3"): WF,
}
# Contract-test lists: (file, group named in the reference) -> target.
GROUPS: dict[tuple[str, str], str] = {
    ("02", "Threads"): f"{AIS}#threads",
    ("02", "Saving messages"): f"{AIS}#saving-messages",
    ("02", "Reading messages"): f"{AIS}#reading-messages",
    ("02", "Working memory"): f"{AIS}#working-memory",
    ("02", "Runs"): AIR,
    ("02", "Approvals"): f"{AIR}#approvals",
    ("02", "Console"): AGENT,
    ("02", "Retention"): AGENT,
    ("02", "Identifiers and values"): "concepts.md#values",
    ("02", "Concurrency"): "concepts.md#concurrency",
    ("02", "Index use"): LAYOUT,
    ("03", "Channels"): CH,
    ("03", "Event hub"): HUB,
    ("03", "Deployments"): DEP,
    ("03", "Concurrency"): "concepts.md#concurrency",
    ("03", "Isolation"): "concepts.md#lifecycle-and-namespaces",
}
# 01 §6 is one numbered list: item ranges -> target.
WORKFLOW_ITEMS: list[tuple[int, int, str]] = [
    (1, 8, "concepts.md#values"),
    (9, 15, f"{WF}#runs"),
    (16, 27, f"{WF}#steps"),
    (28, 31, f"{WF}#graph-primitives"),
    (32, 40, f"{WF}#locks"),
    (41, 48, RUNS),
    (49, 54, "concepts.md#concurrency"),
    (55, 61, LAYOUT),
]
DECISIONS: dict[tuple[str, str], str] = {
    ("01", "7"): RUNS,
    ("01", "13"): f"{WF}#locks",
    ("01", "14"): "concepts.md#values",
    ("01", "16"): RUNS,
    ("01", "17"): "operations.md#not-supported-yet-planned",
}

_SEC = r"§\s?\d+(?:\.\d+)?"
_GROUP = "|".join(sorted({re.escape(g) for _, g in GROUPS} | {"Workflows"}, key=len, reverse=True))
REF = re.compile(
    rf"(?P<file>0[0-5])(?:-[a-z]+)?\s"
    rf"(?:D(?P<decision>\d+)|(?P<secs>{_SEC}"
    rf"(?:(?:(?:,\s*|/)§\s?|[-\u2013]§?\s?)\d+(?:\.\d+)?(?!\d))*)"
    rf"(?:\s(?:(?P<group>{_GROUP})\s)?(?P<items>items?\s)?(?P<item>\d+(?:[-\u2013]\d+)?)(?!\d|\.\d))?)"
)


def _strip_names(pattern: str) -> str:
    return re.sub(r"\?P<[a-z]+>", "?:", pattern)


SPEC_LIST = re.compile(
    rf"Spec:\s(?P<refs>{_strip_names(REF.pattern)}(?:(?:,|;| and)\s{_strip_names(REF.pattern)})*)"
)


def _section_target(file: str, section: str) -> str:
    while True:
        if (file, section) in SECTIONS:
            return SECTIONS[(file, section)]
        if "." in section:
            section = section.rsplit(".", 1)[0]
        elif section:
            section = ""
        else:
            return "index.md"


def targets(match: re.Match[str]) -> list[str]:
    """The docs targets one reference points at, in order, without repeats."""
    file = match["file"]
    if match["decision"]:
        return [DECISIONS.get((file, match["decision"]), SECTIONS.get((file, ""), "index.md"))]
    sections = re.findall(r"\d+(?:\.\d+)?", match["secs"])
    found: list[str] = []
    for section in sections:
        target = _section_target(file, section)
        if section in ("6", "7") and (file, section) in (("01", "6"), ("02", "6"), ("03", "7")):
            target = _list_target(file, match["group"], match["item"]) or target
        if target not in found:
            found.append(target)
    return found


def _list_target(file: str, group: str | None, item: str | None) -> str | None:
    if group and group != "Workflows":
        return GROUPS.get((file, group))
    if file == "01" and item:
        number = int(re.split(r"[-\u2013]", item)[0])
        for low, high, target in WORKFLOW_ITEMS:
            if low <= number <= high:
                return target
    return None


def _link(target: str) -> str:
    return f"docs/{target}"


def _replacement(match: re.Match[str]) -> str:
    text = ", ".join(_link(t) for t in targets(match))
    if match["item"] and (match["group"] or match["items"]):
        text += f" item {match['item']}"
    return text


def rewrite(text: str) -> tuple[str, int]:
    """`text` with every reference rewritten, and how many there were."""
    count = 0

    def spec_list(match: re.Match[str]) -> str:
        nonlocal count
        found: list[str] = []
        for ref in REF.finditer(match["refs"]):
            count += 1
            found += [t for t in targets(ref) if t not in found]
        opening = "see " if match.string[: match.start()].endswith("(") else "See "
        return opening + ", ".join(_link(t) for t in found)

    def bare(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return _replacement(match)

    text = SPEC_LIST.sub(spec_list, text)
    text = REF.sub(bare, text)
    return text, count


def _wrap(line: str, comment: bool) -> list[str]:
    indent = line[: len(line) - len(line.lstrip())]
    prefix = indent + ("# " if comment else "")
    out: list[str] = []
    while len(line) > MAX_LINE:
        cut = line.rfind(" ", len(prefix) + 1, MAX_LINE + 1)
        if cut <= len(prefix):
            break
        out.append(line[:cut].rstrip())
        line = prefix + line[cut + 1 :].lstrip()
    out.append(line)
    return out


def rewrite_file(path: Path) -> tuple[str, int, list[int]]:
    """The new text of `path`, its reference count, and lines still over the limit.

    References are rewritten over the whole text (one may span a line break); then each line
    made too long is re-wrapped: prose inside a docstring, a comment line, or a code line whose
    trailing comment moves above it. Any other long line is reported.
    """
    old = path.read_text()
    new, count = rewrite(old)
    if not count:
        return old, 0, []
    lines: list[str] = []
    too_long: list[int] = []
    in_docstring = False
    for line in new.splitlines():
        quotes = line.count('"""') + line.count("'''")
        stripped = line.lstrip()
        if len(line) <= MAX_LINE or "docs/" not in line:
            lines.append(line)
        elif in_docstring or stripped.startswith(('"""', "'''")):
            lines += _wrap(line, comment=False)
        elif stripped.startswith("#"):
            lines += _wrap(line, comment=True)
        elif "  # " in line:
            code, _, note = line.partition("  # ")
            indent = line[: len(line) - len(stripped)]
            lines += [*_wrap(f"{indent}# {note}", comment=True), code]
        else:
            too_long.append(len(lines) + 1)
            lines.append(line)
        if quotes % 2 == 1:
            in_docstring = not in_docstring
    return "\n".join(lines) + "\n", count, too_long


def _anchors(page: Path) -> set[str]:
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            slug = re.sub(r"[^\w\s-]", "", title)
            found.add(re.sub(r"[\s]+", "-", slug.strip()))
    return found


def check() -> list[str]:
    """Targets of the mapping whose page or anchor does not exist."""
    every = (
        set(SECTIONS.values())
        | set(GROUPS.values())
        | {t for *_, t in WORKFLOW_ITEMS}
        | set(DECISIONS.values())
    )
    missing = []
    for target in sorted(every):
        page, _, anchor = target.partition("#")
        path = DOCS / page
        if not path.is_file() or (anchor and anchor not in _anchors(path)):
            missing.append(target)
    return missing


def _files(paths: list[str]) -> Iterator[Path]:
    for name in paths:
        path = ROOT / name if not Path(name).is_absolute() else Path(name)
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", default=["pikku_storage", "pikku_testing"])
    parser.add_argument("--check", action="store_true", help="only check the mapping's targets")
    parser.add_argument("--dry-run", action="store_true", help="count, change nothing")
    args = parser.parse_args()
    missing = check()
    for target in missing:
        print(f"missing docs target: {target}", file=sys.stderr)
    if args.check or missing:
        return 1 if missing else 0
    total = files = 0
    for path in _files(args.paths):
        text, count, too_long = rewrite_file(path)
        if count:
            total += count
            files += 1
            if not args.dry_run:
                path.write_text(text)
        for line in too_long:
            print(f"{path}:{line}: longer than {MAX_LINE} characters; wrap by hand")
    print(f"{'would rewrite' if args.dry_run else 'rewrote'} {total} references in {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
