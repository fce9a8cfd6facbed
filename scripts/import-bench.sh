#!/usr/bin/env bash
# CSV import benchmark: writes a file of ROWS rows (two line items per order), imports it into
# a fresh SQLite database with the release `kiln`, and prints the wall time and peak memory.
#   scripts/import-bench.sh [ROWS]        (default 100000)
set -euo pipefail
ROWS=${1:-100000}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROWS" "$WORK/orders.csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("external_id,workflow,customer_name,customer_email,priority,due_date,item_description,item_quantity,item_material\n")
    for n in range(rows):
        o, k = n // 2, n % 2
        f.write(f"CSV-{o},print,Customer {o},c{o}@example.com,standard,2027-03-01,Item {k} flyers A5,{100 + k},paper\n")
PY
cargo build --release --bin kiln --quiet
KILN="${CARGO_TARGET_DIR:-target}/release/kiln"
echo "file: $(du -h "$WORK/orders.csv" | cut -f1), $ROWS rows"
/usr/bin/time -f "wall %e s, peak RSS %M KiB" env -u KILN_CONFIG KILN_DATA_DIR="$WORK/data" \
    "$KILN" import orders "$WORK/orders.csv"
