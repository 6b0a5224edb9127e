#!/usr/bin/env python3
"""Prints a test_helper.tcl skip pattern (a line "/^regexp$") for every test in a Redis tcl
test file whose body switches the connection to RESP3 (`hello 3`, `hello $resp`...).
respite refuses HELLO 3 (docs/compatibility.md, difference 1), and such a test aborts the
rest of its file, so run.sh skips them to compare the remaining tests.

Usage: resp3_tests.py tests/unit/type/zset.tcl > skipfile
"""
import re
import sys

TEST_START = re.compile(r'^(\s*)test\s+(?:\{(.+?)\}|"(.+?)")\s+\{')
USES_RESP3 = re.compile(r'hello\s+(3|\$resp|\$proto|\$client_proto)', re.IGNORECASE)


def pattern(name):
    # Names may hold tcl variables ($encoding) or commands ([...]): they match anything.
    out = []
    for part in re.split(r'(\$\w+|\[[^\]]*\])', name):
        if part.startswith('$') or part.startswith('['):
            out.append('.*')
        else:
            out.append(re.sub(r'([][\\.*+?(){}^$|])', r'\\\1', part))
    return '/^' + ''.join(out) + '$'


def main(path):
    lines = open(path, encoding='utf-8', errors='replace').read().split('\n')
    starts = [(i, m) for i, l in enumerate(lines) if (m := TEST_START.match(l))]
    for k, (i, m) in enumerate(starts):
        indent = len(m.group(1))
        end = len(lines)
        for j in range(i + 1, len(lines)):
            line = lines[j]
            stripped = line.lstrip()
            if stripped.startswith('}') and len(line) - len(stripped) <= indent:
                end = j + 1
                break
        body = '\n'.join(lines[i:end])
        if USES_RESP3.search(body):
            print(pattern(m.group(2) or m.group(3)))


if __name__ == '__main__':
    main(sys.argv[1])
