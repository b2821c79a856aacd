"""`python -m ray_replicator` is the same as the `ray-replicator` command."""

from ray_replicator.redact import hide_secrets_in_process_title

hide_secrets_in_process_title()  # before the CLI's imports: the password shows in `ps` only while Python starts

from ray_replicator.cli import main  # noqa: E402

main()
