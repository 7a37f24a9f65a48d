# memcached on 127.0.0.1:11211 for tests/probes_memcached.rs: installed from Debian
# when missing, run in the background and stopped by PID on exit (its -P
# pidfile cannot be written here). An instance already listening is reused.
# Exports AXUM_WATCH_MEMCACHED_ADDR.

memcached_answers() {
  ( exec 3<>"/dev/tcp/127.0.0.1/11211" && printf 'version\r\n' >&3 && IFS= read -r -t 2 reply <&3 && [[ $reply == "VERSION"* ]] ) 2>/dev/null
}

if ! memcached_answers; then
  apt_install memcached:memcached
  log "memcached: starting on 127.0.0.1:11211"
  memcached_user=()
  [ "$(id -u)" -eq 0 ] && memcached_user=(-u memcache)
  mkdir -p target/service-logs
  memcached "${memcached_user[@]}" -l 127.0.0.1 -p 11211 -U 0 >target/service-logs/memcached.log 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 50); do memcached_answers && break; sleep 0.2; done
  memcached_answers || { echo "memcached: no answer on 127.0.0.1:11211 after 10 s" >&2; exit 1; }
  unset memcached_user
fi
export AXUM_WATCH_MEMCACHED_ADDR="${AXUM_WATCH_MEMCACHED_ADDR:-127.0.0.1:11211}"
unset -f memcached_answers
