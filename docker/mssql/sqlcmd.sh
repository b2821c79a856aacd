#!/bin/bash
# Run a T-SQL file against a SQL Server once it accepts logins; every wait is bounded (TRIES x WAIT seconds).
# usage: sqlcmd.sh HOST FILE.sql [sqlcmd -v NAME=VALUE ...]
set -euo pipefail
host="$1"; file="$2"; shift 2
sqlcmd="${SQLCMD:-/opt/mssql-tools18/bin/sqlcmd}"
tries="${TRIES:-90}"
wait="${WAIT:-2}"
for _ in $(seq 1 "$tries"); do
    if "$sqlcmd" -C -S "$host" -U sa -P "$MSSQL_SA_PASSWORD" -Q 'SELECT 1' -b -o /dev/null 2>/dev/null; then
        exec "$sqlcmd" -C -S "$host" -U sa -P "$MSSQL_SA_PASSWORD" -b -i "$file" "$@"
    fi
    sleep "$wait"
done
echo "SQL Server at $host did not accept logins within $((tries * wait)) s" >&2
exit 1
