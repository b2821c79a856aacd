"""`python -m ray_replicator` is the same as the `ray-replicator` command."""

from ray_replicator.cli import main

main()
