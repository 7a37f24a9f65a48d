# shellcheck shell=bash source-path=SCRIPTDIR
# A MongoDB wire-protocol responder for the mongo probe tests. No real mongod
# can be installed here (not in Debian, download installers fail), so the
# probe is tested against MockupDB (Debian's python3-mockupdb, run with
# Debian's /usr/bin/python3): 127.0.0.1:$MONGO_PORT answers like a MongoDB
# 7.0 standalone, $MONGO_PORT+1 refuses serverStatus and answers ping on the
# database "slow" after 3 s (see tests/fixtures/mongo/responder.py). Started
# here and stopped by PID on exit; a responder already listening is reused.
# Exports AXUM_WATCH_MONGO_URL and AXUM_WATCH_MONGO_RESTRICTED_URL.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MONGO_PORT=27017
MONGO_RESPONDER="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../crates/axum-watch-tests/tests/fixtures/mongo" && pwd)/responder.py"

mongo_both_open() { port_open "$MONGO_PORT" && port_open "$((MONGO_PORT + 1))"; }

log "mongodb wire-protocol responder (MockupDB) on 127.0.0.1:$MONGO_PORT and :$((MONGO_PORT + 1))"
if mongo_both_open; then
  echo "  both ports already answer (not started by this run: left running)"
else
  /usr/bin/python3 -c 'import mockupdb' >/dev/null 2>&1 || apt_install python3-mockupdb:python3-mockupdb
  spawn mockupdb /usr/bin/python3 "$MONGO_RESPONDER" "$MONGO_PORT"
  wait_until 10 mongo_both_open || {
    echo "the MockupDB responder did not listen within 10 s; see $SERVICE_LOGS/mockupdb.log" >&2
    exit 1
  }
fi
export AXUM_WATCH_MONGO_URL="${AXUM_WATCH_MONGO_URL:-mongodb://127.0.0.1:$MONGO_PORT/}"
export AXUM_WATCH_MONGO_RESTRICTED_URL="${AXUM_WATCH_MONGO_RESTRICTED_URL:-mongodb://127.0.0.1:$((MONGO_PORT + 1))/}"
unset -f mongo_both_open
