# Three aiosmtpd servers for tests/smtp.rs, from a virtualenv kept under
# ${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/: plain SMTP on 127.0.0.1:8025, one
# offering STARTTLS on 127.0.0.1:8587 and one speaking implicit TLS (SMTPS) on
# 127.0.0.1:8465, with a certificate signed by a test CA that this file makes
# with openssl (kept in target/test-certs/). Servers already listening are
# reused; the ones started here are stopped by PID.
# Exports AXUM_WATCH_SMTP_ADDR, AXUM_WATCH_SMTP_TLS_ADDR, AXUM_WATCH_SMTPS_ADDR
# and AXUM_WATCH_SMTP_TLS_CA.

smtp_answers() { # port [smtps]
  if [ "${2:-}" = smtps ]; then
    printf 'QUIT\r\n' | timeout 5 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$1" 2>/dev/null | grep -q '^220'
  else
    ( exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 2 reply <&3 && [[ $reply == "220"* ]] && printf 'QUIT\r\n' >&3 ) 2>/dev/null
  fi
}

smtp_venv="${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/aiosmtpd-venv"
smtp_certs="$PWD/target/test-certs"

smtp_prepare() {
  if ! "$smtp_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    log "smtp: installing aiosmtpd into $smtp_venv"
    python3 -m venv "$smtp_venv"
    "$smtp_venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd
  fi
  if [ ! -s "$smtp_certs/server.crt" ]; then
    log "smtp: making a test CA and a certificate for 127.0.0.1 / localhost"
    mkdir -p "$smtp_certs"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=axum-watch test CA" \
      -keyout "$smtp_certs/ca.key" -out "$smtp_certs/ca.crt" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
      -keyout "$smtp_certs/server.key" -out "$smtp_certs/server.csr" 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' \
      >"$smtp_certs/server.ext"
    openssl x509 -req -in "$smtp_certs/server.csr" -CA "$smtp_certs/ca.crt" -CAkey "$smtp_certs/ca.key" \
      -CAcreateserial -days 3650 -extfile "$smtp_certs/server.ext" -out "$smtp_certs/server.crt" 2>/dev/null
  fi
}

smtp_start() { # port, plain|smtps, extra aiosmtpd arguments...
  local port=$1 mode=$2
  shift 2
  smtp_answers "$port" "$mode" && return 0
  smtp_prepare
  log "smtp: starting aiosmtpd on 127.0.0.1:$port"
  mkdir -p target/service-logs
  "$smtp_venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" "$@" >"target/service-logs/aiosmtpd-$port.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 75); do smtp_answers "$port" "$mode" && return 0; sleep 0.2; done
  echo "smtp: aiosmtpd gave no banner on 127.0.0.1:$port after 15 s (see target/service-logs/aiosmtpd-$port.log)" >&2
  exit 1
}

smtp_prepare
smtp_start 8025 plain
smtp_start 8587 plain --tlscert "$smtp_certs/server.crt" --tlskey "$smtp_certs/server.key"
smtp_start 8465 smtps --smtpscert "$smtp_certs/server.crt" --smtpskey "$smtp_certs/server.key"
export AXUM_WATCH_SMTP_ADDR="${AXUM_WATCH_SMTP_ADDR:-127.0.0.1:8025}"
export AXUM_WATCH_SMTP_TLS_ADDR="${AXUM_WATCH_SMTP_TLS_ADDR:-127.0.0.1:8587}"
export AXUM_WATCH_SMTPS_ADDR="${AXUM_WATCH_SMTPS_ADDR:-127.0.0.1:8465}"
export AXUM_WATCH_SMTP_TLS_CA="${AXUM_WATCH_SMTP_TLS_CA:-$smtp_certs/ca.crt}"
unset -f smtp_answers smtp_prepare smtp_start
unset smtp_venv smtp_certs
