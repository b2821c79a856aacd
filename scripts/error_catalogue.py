"""Turn the JSON lines that RR_ERROR_CATALOGUE collects into a markdown table: one row per checked failure.

    RR_ERROR_CATALOGUE=/tmp/cases.jsonl bash scripts/test.sh tests/errors tests/faults tests/engines
    python scripts/error_catalogue.py /tmp/cases.jsonl > docs/failures.md

Ports, process ids, temporary paths and generated names vary from run to run: they are shown as <port>, <n> and
<tmp>, so two runs of the same tests give the same table.
"""

from __future__ import annotations

import json
import re
import sys

_VARYING = [
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    (re.compile(r"(/tmp|/var/tmp)/[^\s;,)'\"]+"), "<tmp>"),
    (re.compile(r"\b(dst|src|se_\w+?|db)_\d+_\d+\b"), r"\1_<n>"),
    (re.compile(r"#\d+\b"), "#<n>"),
]


def normalise(line: str) -> str:
    for pattern, replacement in _VARYING:
        line = pattern.sub(replacement, line)
    return line


def main(path: str) -> None:
    rows: dict[tuple[str, int, str], None] = {}
    with open(path, encoding="utf-8") as cases:
        for raw in cases:
            case = json.loads(raw)
            test = case["test"].split("::", 1)
            rows[(f"`{test[0]}` {test[-1]}", case["exit"], normalise(case["line"]))] = None
    print(f"{len(rows)} checked failures: each exits with its code, prints exactly this one line on stderr, no")
    print("traceback and no password (asserted by tests/helpers.py `assert_one_line_error`).")
    print()
    print("| test | exit | line |")
    print("|---|---:|---|")
    for test, code, line in sorted(rows, key=lambda r: (r[0], r[1])):
        cell = line.replace("|", "\\|")
        print(f"| {test} | {code} | {cell} |")


if __name__ == "__main__":
    main(sys.argv[1])
