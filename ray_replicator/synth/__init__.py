"""Synthetic source databases for tests and benchmarks (StackOverflow2010 today).

The generator's public names are listed once, in ``stackoverflow.__all__``, and re-exported here.
"""

from ray_replicator.synth.stackoverflow import *  # noqa: F403
from ray_replicator.synth.stackoverflow import __all__ as __all__
