#!/bin/sh
# Run inside a private mount namespace (`unshare -rm sh full_disk.sh ...`, tests/test_self_healing.py):
# a 6 MiB tmpfs holding a copy of a journal, filled until FREE_KIB KiB are left; then a cold index
# build (`status`) and, with FREE_KIB + 96 KiB left, a `log`. Prints one RESULT line for the test.
set -u
SOURCE=$1 FREE_KIB=$2 PY=$3 ML=$4 LOG=$5 SUMMARY=$6
DISK=$(mktemp -d)
mount -t tmpfs -o size=6m tmpfs "$DISK" || exit 97
mkdir "$DISK/store"
cp "$SOURCE/experiments.jsonl" "$DISK/store/"
fill() {  # leave $1 KiB free on the tmpfs
    rm -f "$DISK/filler"
    avail=$(df -k --output=avail "$DISK" | tail -1)
    [ "$avail" -gt "$1" ] && dd if=/dev/zero of="$DISK/filler" bs=1k count=$((avail - $1)) 2>/dev/null
    true
}
fill "$FREE_KIB"
cd "$DISK" || exit 98
"$PY" "$ML" --home "$DISK/store" status --json >"$DISK/../status.json" 2>/tmp/status.err
status=$?
runs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["runs"])' "$DISK/../status.json" 2>/dev/null)
cat /tmp/status.err
fill $((FREE_KIB + 96))
"$PY" "$ML" --home "$DISK/store" log -d "logged on a full disk" --status discard --log "$LOG" --summary "$SUMMARY"
logrc=$?
recorded=$(grep -c . "$DISK/store/experiments.jsonl")
echo "RESULT status=$status runs=$runs log=$logrc recorded=$recorded"
