#!/usr/bin/python3
"""Keep docs/compatibility.md in step with proto/commands.tsv.

Usage:
  proto/families.py --check docs/compatibility.md   # exit 1 and list what the doc misses
  proto/families.py --list                          # top-level commands grouped by family

--check: every top-level command name in commands.tsv must appear in the document as a
word inside an inline code span (`BLPOP`, `XREAD ... BLOCK`, `CLIENT|KILL`), in any case.
For the containers named by --subcommands (default: client, whose subcommands respite
handles one by one) every subcommand must appear too: in a code span right after the
container's name (`CLIENT KILL`), or as a code word on a line that also has the
container's name as a code word (a table row for `CLIENT`). HTML comments and fenced
code blocks do not count.

--list: the family of each top-level command, from its ACL categories (a container's
from its subcommands'), to compare with the document's table after a regeneration.

Standard library only.
"""

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TSV = os.path.join(HERE, "commands.tsv")

# ACL categories that name a family, in the order they win when a command has several
# (SORT is list, set and sorted set: it falls through to "keyspace").
DATA_FAMILIES = ["string", "hash", "list", "set", "sortedset", "stream", "bitmap",
                 "hyperloglog", "geo"]
OTHER_FAMILIES = ["pubsub", "transaction", "scripting", "keyspace", "connection"]


def load_table(path):
    """Returns (top-level names in file order, {container: [subcommands]}, {name: categories})."""
    names, subs, cats = [], {}, {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            if len(fields) not in (8, 9):
                raise SystemExit(f"{path}: malformed line: {line.rstrip()}")
            name, categories = fields[0], fields[6]
            cats[name] = [] if categories == "-" else categories.split(",")
            if "|" in name:
                parent, sub = name.split("|", 1)
                subs.setdefault(parent, []).append(sub)
            else:
                names.append(name)
    return names, subs, cats


def family_of(name, subs, cats):
    own = set(cats.get(name, []))
    if name in subs:  # a container: the categories of its subcommands
        for sub in subs[name]:
            own.update(cats.get(f"{name}|{sub}", []))
    data = [fam for fam in DATA_FAMILIES if fam in own]
    if len(data) == 1:
        return data[0]
    if len(data) > 1:
        return "keyspace"
    for fam in OTHER_FAMILIES:
        if fam in own:
            return fam
    return "server"


def code_words(text):
    """Lowercase words of every inline code span, per line: [(line_no, [[words of span]...])]."""
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    out, in_fence = [], False
    for no, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        spans = []
        for span in re.findall(r"`([^`\n]+)`", line):
            words = [w.strip("-").lower() for w in re.findall(r"[A-Za-z0-9_\-]+", span)]
            spans.append([w for w in words if w])
        if spans:
            out.append((no, spans))
    return out


def check(doc_path, tsv_path, containers):
    names, subs, _ = load_table(tsv_path)
    with open(doc_path, encoding="utf-8") as f:
        lines = code_words(f.read())
    seen = {w for _, spans in lines for span in spans for w in span}
    missing = [n for n in names if n not in seen]
    missing_subs = []
    for parent in containers:
        if parent not in subs:
            raise SystemExit(f"--subcommands: '{parent}' has no subcommands in {tsv_path}")
        covered = set()
        for _, spans in lines:
            line_words = {w for span in spans for w in span}
            if parent in line_words:
                covered |= line_words
            for span in spans:
                covered |= {span[i + 1] for i in range(len(span) - 1) if span[i] == parent}
        missing_subs += [f"{parent} {s}" for s in subs[parent] if s not in covered]
    if missing or missing_subs:
        print(f"{doc_path}: {len(missing) + len(missing_subs)} command(s) of {os.path.relpath(tsv_path)} not named in code spans:")
        for n in missing + missing_subs:
            print(f"  {n.upper()}")
        return 1
    total_subs = sum(len(subs[p]) for p in containers)
    print(f"{doc_path}: all {len(names)} top-level commands and {total_subs} subcommands of "
          f"{', '.join(p.upper() for p in containers)} are named")
    return 0


def list_families(tsv_path):
    names, subs, cats = load_table(tsv_path)
    groups = {}
    for n in names:
        groups.setdefault(family_of(n, subs, cats), []).append(n)
    for fam in DATA_FAMILIES + OTHER_FAMILIES + ["server"]:
        if fam in groups:
            print(f"{fam} ({len(groups[fam])}): {' '.join(n.upper() for n in groups[fam])}")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", metavar="DOC", help="check that DOC names every command")
    mode.add_argument("--list", action="store_true", help="print the commands grouped by family")
    ap.add_argument("--tsv", default=DEFAULT_TSV, help="command table (default: proto/commands.tsv)")
    ap.add_argument("--subcommands", default="client",
                    help="comma-separated containers whose subcommands --check requires (default: client)")
    args = ap.parse_args()
    if args.list:
        return list_families(args.tsv)
    containers = [c.strip().lower() for c in args.subcommands.split(",") if c.strip()]
    return check(args.check, args.tsv, containers)


if __name__ == "__main__":
    sys.exit(main())
