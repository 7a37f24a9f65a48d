# shellcheck shell=bash source-path=SCRIPTDIR
# memcached on 127.0.0.1:11211 for tests/probes_memcached.rs: installed from
# Debian when missing, run in the background and stopped by PID on exit (its
# -P pidfile cannot be written here). An instance already listening is
# reused and left running.
# Exports AXUM_WATCH_MEMCACHED_ADDR.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

memcached_answers() {
  ( exec 3<>"/dev/tcp/127.0.0.1/11211" && printf 'version\r\n' >&3 && IFS= read -r -t 2 reply <&3 && [[ $reply == "VERSION"* ]] ) 2>/dev/null
}

if memcached_answers; then
  echo "  memcached answers on 127.0.0.1:11211 (not started by this run: left running)"
else
  apt_install memcached:memcached
  log "memcached: starting on 127.0.0.1:11211"
  memcached_user=()
  [ "$(id -u)" -eq 0 ] && memcached_user=(-u memcache)
  spawn memcached memcached "${memcached_user[@]}" -l 127.0.0.1 -p 11211 -U 0
  unset memcached_user
  wait_until 10 memcached_answers || { echo "memcached: no answer on 127.0.0.1:11211 after 10 s (see $SERVICE_LOGS/memcached.log)" >&2; exit 1; }
fi
export AXUM_WATCH_MEMCACHED_ADDR="${AXUM_WATCH_MEMCACHED_ADDR:-127.0.0.1:11211}"
unset -f memcached_answers
