#!/usr/bin/env python3
"""Checks the include graph of agent/, collector/ and common/ (CTest `layers`).

Every `#include "..."` that names a file of the tree is an edge. The rules:

  1. common/ includes nothing from agent/ or collector/.
  2. collector/ includes nothing from agent/.
  3. The components of agent/ (capture, decode, analyzer, tcp, http, jose,
     output, service, token, metrics, privilege; stats.{h,cc} as `stats`;
     the other files at agent/ root as `root`) include one another without
     a cycle.
  4. The file-level include graph has no cycle anywhere.

Prints the component graphs as edges, then every violation, each cycle
named file by file. Exit 0 when the tree holds, 1 when it does not.

  check_layers.py [ROOT]        check ROOT (default: this repository)
  check_layers.py --self-test   plant each kind of violation in a temporary
                                tree and check that it is caught, then
                                check that a clean tree passes
"""
import os
import re
import subprocess
import sys
import tempfile

TOP = ("agent", "collector", "common")
SOURCE_SUFFIXES = (".h", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.M)


def sources(root):
    """Paths relative to root of every .h and .cc under the top folders."""
    out = []
    for top in TOP:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for f in sorted(filenames):
                if f.endswith(SOURCE_SUFFIXES):
                    out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return out


def include_graph(root):
    """{file: [included file, ...]} for includes that resolve to a file of
    the tree (root-relative first, as the build's include path has it, then
    relative to the including file). Others (absl, generated protos) are
    outside the graph."""
    files = set(sources(root))
    graph = {}
    for f in sorted(files):
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        edges = []
        for name in INCLUDE.findall(text):
            for cand in (os.path.normpath(name),
                         os.path.normpath(os.path.join(os.path.dirname(f), name))):
                if cand in files:
                    if cand not in edges:
                        edges.append(cand)
                    break
        graph[f] = edges
    return graph


def component(path):
    """The agent component of an agent/ file, else None."""
    parts = path.split(os.sep)
    if parts[0] != "agent":
        return None
    if len(parts) > 2:
        return parts[1]
    stem = os.path.splitext(parts[1])[0]
    return "stats" if stem == "stats" else "root"


def find_cycle(graph):
    """One cycle of a directed graph as [n0, n1, ..., n0], or None.
    Iterative depth-first search (no recursion limit on long chains)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {n: WHITE for n in graph}
    for start in sorted(graph):
        if color[start] != WHITE:
            continue
        stack = [(start, iter(graph[start]))]
        path = [start]
        color[start] = GREY
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = BLACK
                stack.pop()
                path.pop()
                continue
            if color.get(nxt, BLACK) == GREY:
                cycle = path[path.index(nxt):]
                i = cycle.index(min(cycle))  # the same cycle names the same way
                cycle = cycle[i:] + cycle[:i]
                return cycle + [cycle[0]]
            if color.get(nxt) == WHITE:
                color[nxt] = GREY
                stack.append((nxt, iter(graph[nxt])))
                path.append(nxt)
    return None


def check(root):
    graph = include_graph(root)
    errors = []

    # 1 and 2: no include upward across the top folders.
    forbidden = {"common": ("agent", "collector"), "collector": ("agent",)}
    top_edges = {}
    for f, incs in graph.items():
        src = f.split(os.sep)[0]
        for inc in incs:
            dst = inc.split(os.sep)[0]
            if src != dst:
                top_edges.setdefault((src, dst), []).append((f, inc))
            if dst in forbidden.get(src, ()):
                errors.append(f"{src}/ includes {dst}/: {f} -> {inc}")

    # 3: the agent's component graph, with one file edge behind each edge.
    comp_graph = {}
    witness = {}
    for f, incs in graph.items():
        a = component(f)
        if a is None:
            continue
        comp_graph.setdefault(a, [])
        for inc in incs:
            b = component(inc)
            if b is None or b == a:
                continue
            comp_graph.setdefault(b, [])
            if b not in comp_graph[a]:
                comp_graph[a].append(b)
                witness[(a, b)] = (f, inc)
    for k in comp_graph:
        comp_graph[k].sort()

    print("top-level edges (folder -> folder: file includes):")
    for (a, b), ex in sorted(top_edges.items()):
        print(f"  {a} -> {b}  ({len(ex)})")
    print("agent component edges (component -> component, e.g. file -> file):")
    for a in sorted(comp_graph):
        for b in comp_graph[a]:
            f, inc = witness[(a, b)]
            print(f"  {a} -> {b}  ({f} -> {inc})")

    cycle = find_cycle(comp_graph)
    if cycle:
        steps = []
        for a, b in zip(cycle, cycle[1:]):
            f, inc = witness[(a, b)]
            steps.append(f"{a} -> {b} ({f} -> {inc})")
        errors.append("agent component cycle: " + " -> ".join(cycle) +
                      "\n    " + "\n    ".join(steps))

    # 4: no cycle among files.
    cycle = find_cycle(graph)
    if cycle:
        errors.append("file include cycle: " + " -> ".join(cycle))

    print(f"{len(graph)} files, "
          f"{sum(len(v) for v in graph.values())} includes within the tree")
    for e in errors:
        print("LAYERS FAIL: " + e)
    if not errors:
        print("layers: ok")
    return 1 if errors else 0


# --- self-test --------------------------------------------------------------

def write(root, path, includes):
    full = os.path.join(root, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as fh:
        for inc in includes:
            fh.write(f'#include "{inc}"\n')
        fh.write('#include "absl/strings/str_cat.h"\n')


# A clean tree. agent/http includes agent/stats.h and agent/pipeline.h
# reaches agent/http: were stats.h part of `root`, this would be a cycle.
CLEAN = {
    "common/json.h": [],
    "common/config.h": ["common/json.h"],
    "agent/stats.h": [],
    "agent/stats.cc": ["agent/stats.h"],
    "agent/http/parser.h": ["agent/stats.h"],
    "agent/token/extractor.h": ["agent/http/parser.h", "common/config.h"],
    "agent/token/extractor.cc": ["agent/token/extractor.h"],
    "agent/pipeline.h": ["agent/token/extractor.h"],
    "collector/engine.h": ["common/config.h"],
}

# name: (files added to the clean tree, text the report must contain)
PLANTED = {
    "component cycle": (
        {"agent/http/session.cc": ["agent/token/extractor.h"]},
        "agent component cycle: http -> token -> http"),
    "cycle through four components": (
        {"agent/stats.cc": ["agent/stats.h", "agent/pipeline.h"]},
        "agent component cycle: http -> stats -> root -> token -> http"),
    "file cycle": (
        {"collector/a.h": ["collector/b.h"], "collector/b.h": ["collector/a.h"]},
        "file include cycle: collector/a.h -> collector/b.h -> collector/a.h"),
    "common includes agent": (
        {"common/log.h": ["agent/stats.h"]},
        "common/ includes agent/: common/log.h -> agent/stats.h"),
    "common includes collector": (
        {"common/log.h": ["collector/engine.h"]},
        "common/ includes collector/: common/log.h -> collector/engine.h"),
    "collector includes agent": (
        {"collector/ingest.cc": ["agent/token/extractor.h"]},
        "collector/ includes agent/: collector/ingest.cc -> agent/token/extractor.h"),
}


def self_test():
    failures = 0

    def run(tree):
        with tempfile.TemporaryDirectory(prefix="check_layers.") as d:
            for path, incs in tree.items():
                write(d, path, incs)
            return subprocess.run([sys.executable, os.path.abspath(__file__), d],
                                  capture_output=True, text=True)

    r = run(CLEAN)
    ok = r.returncode == 0 and "layers: ok" in r.stdout
    print(f"self-test: clean tree passes: {'ok' if ok else 'FAILED'}")
    if not ok:
        failures += 1
        print(r.stdout + r.stderr)
    for name, (extra, expect) in PLANTED.items():
        r = run({**CLEAN, **extra})
        ok = r.returncode == 1 and expect in r.stdout
        print(f"self-test: {name} caught: {'ok' if ok else 'FAILED'}")
        if not ok:
            failures += 1
            print(f"  expected exit 1 and {expect!r}; got exit {r.returncode}:")
            print(r.stdout + r.stderr)
    return failures


def main(argv):
    if argv[1:2] == ["--self-test"]:
        failures = self_test()
        root = argv[2] if len(argv) > 2 else None
        if root is None:
            return 1 if failures else 0
        print()
        rc = check(root)
        return 1 if failures or rc else 0
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1] if len(argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
    return check(os.path.abspath(root))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
