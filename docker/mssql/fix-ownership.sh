#!/bin/sh
# SQL Server 2022 runs as uid 10001 (mssql): it can only attach data files it owns and may write.
# Also opens the shared BULK INSERT directory to the Ray workers (uid 1000) and the target server (uid 10001).
set -eu
data="${SO2010:-/so2010}"
bulk="${BULK:-/bulk}"
found=0
for f in "$data"/*.mdf "$data"/*.ldf; do
    [ -e "$f" ] || continue
    chown 10001:0 "$f"
    chmod 660 "$f"
    found=1
done
if [ "$found" = 0 ]; then
    echo "no .mdf/.ldf in SO2010_DIR: unpack StackOverflow2010.7z there first (see docker/README.md)" >&2
    exit 1
fi
chown 10001:0 "$data"
mkdir -p "$bulk"
chmod 1777 "$bulk"
