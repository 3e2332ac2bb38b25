#!/usr/bin/env bash
# `make test`: the SQLite and the PostgreSQL legs at once. Their stacks are isolated (free ports,
# temporary homes, fresh databases), and most of a leg's time is waiting on processes (flow runs
# start warm: aftersales/deployments/warm_start.py), so several streams share 2 cores well. Each
# leg's whole output goes to var/test-logs/<leg>.log; printed here are its summary (failures named
# with their leg) and a closing line for both. A leg that ran no test fails.
set -u
cd "$(dirname "$0")/.."
logs=var/test-logs
mkdir -p "$logs"
pytest=.venv/bin/pytest
started=$(date +%s)

# AFTERSALES_TEST_WORKERS=2 runs two pytest-xdist workers inside each leg, each with a stack of its own
# (a file stays on one worker, so its module fixtures, e.g. the `make run` stack, start once). On 2
# cores that saved about 2 of 25 minutes and left the machine so CPU-bound that waits timed out, so
# the default is one process per leg.
workers=${AFTERSALES_TEST_WORKERS:-1}
xdist=()
[ "$workers" -gt 1 ] && xdist=(-n "$workers" --dist loadfile)
# a temporary folder of its own per leg: pytest's numbered folders are cleaned up by age across runs
AFTERSALES_TEST_DB=sqlite "$pytest" -q "${xdist[@]}" --basetemp "$(mktemp -d -t aftersales-sqlite-XXXX)" "$@" >"$logs/sqlite.log" 2>&1 &
sqlite_pid=$!
AFTERSALES_TEST_DB=postgres "$pytest" -q "${xdist[@]}" --basetemp "$(mktemp -d -t aftersales-postgres-XXXX)" "$@" >"$logs/postgres.log" 2>&1 &
postgres_pid=$!
wait $sqlite_pid; sqlite_rc=$?
wait $postgres_pid; postgres_rc=$?

status=0
passed_all=0; failed_all=0; skipped_all=0
for leg in sqlite postgres; do
    rc_var="${leg}_rc"; rc=${!rc_var}
    log="$logs/$leg.log"
    echo "================ leg: $leg (exit $rc, full output in $log) ================"
    # pytest's short summary and closing line, each failure named with its leg
    sed -n '/short test summary info/,$p' "$log" | sed "s/^\(FAILED\|ERROR\) /\1 [$leg] /"
    sed -n '/short test summary info/,$p' "$log" | grep -q . || tail -n 5 "$log"
    closing=$(grep -E '(passed|failed|errors?|no tests ran).* in [0-9.]+s' "$log" | tail -n 1)
    passed=$(echo "$closing" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+' || true)
    failed=$(echo "$closing" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+' || true)
    errors=$(echo "$closing" | grep -oE '[0-9]+ errors?' | grep -oE '[0-9]+' || true)
    skipped=$(echo "$closing" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+' || true)
    passed=${passed:-0}; failed=$(( ${failed:-0} + ${errors:-0} )); skipped=${skipped:-0}
    if [ "$rc" -ne 0 ] || [ "$passed" -eq 0 ]; then
        status=1
        [ "$passed" -eq 0 ] && echo "leg $leg ran no test"
    fi
    passed_all=$((passed_all + passed)); failed_all=$((failed_all + failed)); skipped_all=$((skipped_all + skipped))
done
echo "both legs in $(( $(date +%s) - started )) s"
echo "total: $passed_all passed, $failed_all failed, $skipped_all skipped"
exit $status
