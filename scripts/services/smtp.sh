# Three aiosmtpd servers for tests/probes_smtp.rs, from a virtualenv kept under
# ${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch/: plain SMTP on 127.0.0.1:8025, one
# offering STARTTLS on 127.0.0.1:8587 and one speaking implicit TLS (SMTPS) on
# 127.0.0.1:8465. The TLS ones present a certificate for 127.0.0.1/localhost
# signed by a test CA that this file makes once with openssl, kept next to the
# virtualenv so that every checkout on the machine trusts the same CA. Servers
# already listening are reused (the TLS ones only if their certificate comes
# from that CA); the ones started here are stopped by PID.
# Exports AXUM_WATCH_SMTP_ADDR, AXUM_WATCH_SMTP_TLS_ADDR, AXUM_WATCH_SMTPS_ADDR
# and AXUM_WATCH_SMTP_TLS_CA.

smtp_home="${XDG_CACHE_HOME:-$HOME/.cache}/axum-watch"
smtp_venv="$smtp_home/aiosmtpd-venv"
smtp_certs="$smtp_home/test-certs"

smtp_listening() { ( exec 3<>"/dev/tcp/127.0.0.1/$1" ) 2>/dev/null; }

smtp_answers() { # port plain|starttls|smtps
  case $2 in
    plain)
      ( exec 3<>"/dev/tcp/127.0.0.1/$1" && IFS= read -r -t 2 reply <&3 && [[ $reply == "220"* ]] && printf 'QUIT\r\n' >&3 ) 2>/dev/null ;;
    starttls)
      printf 'QUIT\r\n' | timeout 5 openssl s_client -quiet -ign_eof -starttls smtp -connect "127.0.0.1:$1" \
        -CAfile "$smtp_certs/ca.crt" -verify_return_error 2>/dev/null | grep -q '^221' ;;
    smtps)
      printf 'QUIT\r\n' | timeout 5 openssl s_client -quiet -ign_eof -connect "127.0.0.1:$1" \
        -CAfile "$smtp_certs/ca.crt" -verify_return_error 2>/dev/null | grep -q '^220' ;;
  esac
}

smtp_prepare() {
  if ! "$smtp_venv/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    log "smtp: installing aiosmtpd into $smtp_venv"
    python3 -m venv "$smtp_venv"
    "$smtp_venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd
  fi
  if [ ! -s "$smtp_certs/server.crt" ]; then
    log "smtp: making a test CA and a certificate for 127.0.0.1 / localhost in $smtp_certs"
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

smtp_start() { # port plain|starttls|smtps [aiosmtpd arguments...]
  local port=$1 mode=$2
  shift 2
  smtp_answers "$port" "$mode" && return 0
  if smtp_listening "$port"; then
    echo "smtp: something on 127.0.0.1:$port is not the expected $mode aiosmtpd (certificate from $smtp_certs/ca.crt); stop it" >&2
    exit 1
  fi
  log "smtp: starting aiosmtpd ($mode) on 127.0.0.1:$port"
  mkdir -p target/service-logs
  "$smtp_venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" "$@" >"target/service-logs/aiosmtpd-$port.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 75); do smtp_answers "$port" "$mode" && return 0; sleep 0.2; done
  echo "smtp: aiosmtpd ($mode) not answering on 127.0.0.1:$port after 15 s (see target/service-logs/aiosmtpd-$port.log)" >&2
  exit 1
}

smtp_prepare
smtp_start 8025 plain
smtp_start 8587 starttls --tlscert "$smtp_certs/server.crt" --tlskey "$smtp_certs/server.key"
smtp_start 8465 smtps --smtpscert "$smtp_certs/server.crt" --smtpskey "$smtp_certs/server.key"
export AXUM_WATCH_SMTP_ADDR="${AXUM_WATCH_SMTP_ADDR:-127.0.0.1:8025}"
export AXUM_WATCH_SMTP_TLS_ADDR="${AXUM_WATCH_SMTP_TLS_ADDR:-127.0.0.1:8587}"
export AXUM_WATCH_SMTPS_ADDR="${AXUM_WATCH_SMTPS_ADDR:-127.0.0.1:8465}"
export AXUM_WATCH_SMTP_TLS_CA="${AXUM_WATCH_SMTP_TLS_CA:-$smtp_certs/ca.crt}"
unset -f smtp_listening smtp_answers smtp_prepare smtp_start
unset smtp_home smtp_venv smtp_certs
