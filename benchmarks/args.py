"""The command line every benchmark shares: the dataset's scale and seed, and comma-separated subsets."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def scale_parser(doc: str | None, scale: float) -> argparse.ArgumentParser:
    """A parser with the script's docstring as help, --scale (default `scale`) and --seed."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=scale, help="StackOverflow2010 scale (1.0: 19.3 M rows)")
    parser.add_argument("--seed", type=int, default=42)
    return parser


def subset(parser: argparse.ArgumentParser, value: str, choices: Sequence[str]) -> list[str]:
    """The names of a comma-separated option, each one of `choices` (else the usage error exits)."""
    chosen = [name for name in value.split(",") if name]
    unknown = [name for name in chosen if name not in choices]
    if unknown:
        parser.error(f"unknown {', '.join(unknown)}; choose from {', '.join(choices)}")
    return chosen
