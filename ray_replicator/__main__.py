"""`python -m ray_replicator` is the same as the `ray-replicator` command."""

import sys

from ray_replicator import signals
from ray_replicator.redact import hide_secrets_in_process_title

# Before the CLI's imports: the password shows in `ps` only while Python starts, and a SIGTERM or Ctrl-C while the
# CLI still imports ends it like one later (one line, 143 or 130), not with Python's default.
signals.install()
hide_secrets_in_process_title()

try:
    from ray_replicator.cli import main
except signals.Interrupted as stopped:
    print(f"error: interrupted by {stopped}", file=sys.stderr)
    sys.exit(stopped.exit_code)

main()
