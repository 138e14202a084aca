"""Layouts of the run page's two pictures: the attempt timeline and the workflow graph.

The functions return plain geometry (numbers, labels, status words); the templates draw it as
inline SVG, so every label is escaped by Jinja like any other stored string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from pikku_storage.codec import JsonValue
from pikku_storage.records import StepHistoryEntry, StepStatus

__all__ = ["Graph", "Timeline", "graph_layout", "timeline_layout"]

LABEL_WIDTH: Final = 210
PLOT_WIDTH: Final = 640
ROW_HEIGHT: Final = 26
AXIS_HEIGHT: Final = 28
MIN_BAR: Final = 4.0
MAX_ROWS: Final = 500
MAX_NODES: Final = 200
NODE_W: Final = 150
NODE_H: Final = 36
COL_GAP: Final = 60
ROW_GAP: Final = 22


@dataclass(slots=True, kw_only=True)
class Bar:
    """One attempt: a waiting segment (created to started) and a working segment."""

    y: float
    label: str
    status: str
    x: float
    width: float
    wait_x: float
    wait_width: float
    took: str
    title: str


@dataclass(slots=True, kw_only=True)
class Tick:
    x: float
    label: str


@dataclass(slots=True, kw_only=True)
class Timeline:
    width: int
    height: int
    label_width: int
    plot_width: int
    row_height: int
    axis_y: float
    bars: list[Bar] = field(default_factory=list)
    ticks: list[Tick] = field(default_factory=list)
    truncated: int = 0


def _end(entry: StepHistoryEntry, now: datetime) -> datetime:
    for stamp in (entry.succeeded_at, entry.failed_at):
        if stamp is not None:
            return stamp
    if entry.status in (StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.PENDING):
        return max(now, entry.updated_at)
    return entry.updated_at


def _start(entry: StepHistoryEntry) -> datetime:
    return entry.running_at or entry.scheduled_at or entry.created_at


def _duration_label(ms: float) -> str:
    if ms == 0:
        return "0"
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 120_000:
        return f"{ms / 1000:.1f} s"
    if ms < 7_200_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def timeline_layout(history: Sequence[StepHistoryEntry], now: datetime) -> Timeline | None:
    """One row per attempt on a shared time axis; `None` when the run has no step yet.

    A bar starts when the attempt started running (or was scheduled, or created) and ends at
    its success or failure stamp, at `now` while it is still live; the grey segment before it
    is the time the attempt waited after being created.
    """
    if not history:
        return None
    shown = list(history[:MAX_ROWS])
    origin = min(entry.created_at for entry in shown)
    finish = max(_end(entry, now) for entry in shown)
    span_ms = max((finish - origin).total_seconds() * 1000, 1.0)
    scale = PLOT_WIDTH / span_ms

    def x_of(when: datetime) -> float:
        return LABEL_WIDTH + (when - origin).total_seconds() * 1000 * scale

    bars: list[Bar] = []
    for row, entry in enumerate(shown):
        created, start, end = x_of(entry.created_at), x_of(_start(entry)), x_of(_end(entry, now))
        width = max(end - start, MIN_BAR)
        start = min(start, LABEL_WIDTH + PLOT_WIDTH - width)
        took = (_end(entry, now) - _start(entry)).total_seconds() * 1000
        bars.append(
            Bar(
                y=AXIS_HEIGHT + row * ROW_HEIGHT,
                label=f"{entry.step_name} #{entry.attempt_count}",
                status=entry.status.value,
                x=round(start, 2),
                width=round(width, 2),
                wait_x=round(created, 2),
                wait_width=round(max(start - created, 0.0), 2),
                took=_duration_label(took),
                title=f"{entry.step_name} attempt {entry.attempt_count}: "
                f"{entry.status.value}, {_duration_label(took)}",
            )
        )
    ticks = [
        Tick(x=round(LABEL_WIDTH + PLOT_WIDTH * i / 4, 2), label=_duration_label(span_ms * i / 4))
        for i in range(5)
    ]
    return Timeline(
        width=LABEL_WIDTH + PLOT_WIDTH + 60,
        height=AXIS_HEIGHT + len(shown) * ROW_HEIGHT + 8,
        label_width=LABEL_WIDTH,
        plot_width=PLOT_WIDTH,
        row_height=ROW_HEIGHT,
        axis_y=AXIS_HEIGHT - 8,
        bars=bars,
        ticks=ticks,
        truncated=len(history) - len(shown),
    )


@dataclass(slots=True, kw_only=True)
class Node:
    id: str
    label: str
    x: float
    y: float
    status: str


@dataclass(slots=True, kw_only=True)
class Edge:
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(slots=True, kw_only=True)
class Graph:
    width: int
    height: int
    node_width: int
    node_height: int
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)


def _node_id(value: JsonValue) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("id", "name", "nodeId"):
            found = value.get(key)
            if isinstance(found, str):
                return found
    return None


def _targets(value: JsonValue) -> list[str]:
    """Node ids named by a `next` value: a string, a list of them, or a branch mapping."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    if isinstance(value, Mapping):
        out: list[str] = []
        for item in value.values():
            out.extend(_targets(item))
        return out
    return []


def _parse(graph: JsonValue) -> tuple[list[str], list[tuple[str, str]]] | None:
    """Nodes and edges of the shapes workflow graphs are stored in, or `None` if unknown.

    Nodes: a list of ids or of objects with `id`, or a mapping id -> node; edges: an `edges`
    list of `[from, to]` pairs or `{from, to}`/`{source, target}` objects, and each node's
    `next` (an id, a list, or a branch mapping).
    """
    if not isinstance(graph, Mapping):
        return None
    raw_nodes = graph.get("nodes")
    nodes: list[str] = []
    edges: list[tuple[str, str]] = []
    specs: list[tuple[str, JsonValue]] = []
    if isinstance(raw_nodes, list):
        for item in raw_nodes:
            node = _node_id(item)
            if node is not None:
                specs.append((node, item))
    elif isinstance(raw_nodes, Mapping):
        specs = [(str(key), item) for key, item in raw_nodes.items()]
    else:
        return None
    for node, item in specs:
        nodes.append(node)
        if isinstance(item, Mapping) and "next" in item:
            edges.extend((node, target) for target in _targets(item["next"]))
    raw_edges = graph.get("edges")
    if isinstance(raw_edges, list):
        for item in raw_edges:
            if isinstance(item, list) and len(item) == 2 and all(isinstance(i, str) for i in item):
                edges.append((str(item[0]), str(item[1])))
            elif isinstance(item, Mapping):
                src = item.get("from", item.get("source"))
                dst = item.get("to", item.get("target"))
                if isinstance(src, str) and isinstance(dst, str):
                    edges.append((src, dst))
    return nodes, edges


def graph_layout(graph: JsonValue, statuses: Mapping[str, str]) -> Graph | None:
    """Nodes in columns by their longest path from a start node, edges between box sides.

    `statuses` maps a node id to the status of the run's step of that name, so the picture
    shows how far the run got. `None` when the graph is of an unknown shape or too large.
    """
    parsed = _parse(graph)
    if parsed is None:
        return None
    nodes, edges = parsed
    known = list(dict.fromkeys(nodes))
    for src, dst in edges:
        for node in (src, dst):
            if node not in known:
                known.append(node)
    if not known or len(known) > MAX_NODES:
        return None
    depth = dict.fromkeys(known, 0)
    for _ in range(len(known)):  # longest-path layering; a cycle stops after len(known) passes
        changed = False
        for src, dst in edges:
            if src != dst and depth[dst] < depth[src] + 1 and depth[src] + 1 < len(known):
                depth[dst] = depth[src] + 1
                changed = True
        if not changed:
            break
    rows: dict[int, int] = {}
    placed: dict[str, Node] = {}
    for node in known:
        column = depth[node]
        row = rows.get(column, 0)
        rows[column] = row + 1
        placed[node] = Node(
            id=node,
            label=node if len(node) <= 20 else node[:19] + "…",
            x=10 + column * (NODE_W + COL_GAP),
            y=10 + row * (NODE_H + ROW_GAP),
            status=statuses.get(node, "none"),
        )
    drawn = [
        Edge(
            x1=placed[src].x + NODE_W,
            y1=placed[src].y + NODE_H / 2,
            x2=placed[dst].x - 4,
            y2=placed[dst].y + NODE_H / 2,
        )
        for src, dst in dict.fromkeys(edges)
        if src != dst
    ]
    columns = max(depth.values()) + 1
    most_rows = max(rows.values())
    return Graph(
        width=20 + columns * (NODE_W + COL_GAP) - COL_GAP,
        height=20 + most_rows * (NODE_H + ROW_GAP) - ROW_GAP,
        node_width=NODE_W,
        node_height=NODE_H,
        nodes=list(placed.values()),
        edges=drawn,
    )
