# shellcheck shell=bash source-path=SCRIPTDIR
# Three aiosmtpd servers for tests/probes_smtp.rs, from a virtualenv kept in
# $AXUM_WATCH_CACHE: plain SMTP on 127.0.0.1:8025, one offering STARTTLS on
# 127.0.0.1:8587 and one speaking implicit TLS (SMTPS) on 127.0.0.1:8465.
# The TLS ones present the server certificate of the machine's test CA
# (test_ca in lib.sh). Servers already listening are reused and left running
# (the TLS ones only if their certificate comes from that CA); the ones
# started here are stopped by PID on exit.
# Exports AXUM_WATCH_SMTP_ADDR, AXUM_WATCH_SMTP_TLS_ADDR, AXUM_WATCH_SMTPS_ADDR
# and AXUM_WATCH_SMTP_TLS_CA.
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

smtp_venv="$AXUM_WATCH_CACHE/aiosmtpd-venv"
smtp_certs="$AXUM_WATCH_TEST_CERTS"

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
    python3 -m venv "$smtp_venv" 2>/dev/null || { apt_install virtualenv:python3-venv; python3 -m venv "$smtp_venv"; }
    "$smtp_venv/bin/pip" install --quiet --disable-pip-version-check aiosmtpd
  fi
  test_ca
}

smtp_start() { # port plain|starttls|smtps [aiosmtpd arguments...]
  local port=$1 mode=$2
  shift 2
  if smtp_answers "$port" "$mode"; then
    echo "  smtp ($mode) answers on 127.0.0.1:$port (not started by this run: left running)"
    return 0
  fi
  if port_open "$port"; then
    echo "smtp: something on 127.0.0.1:$port is not the expected $mode aiosmtpd (certificate from $smtp_certs/ca.crt); stop it" >&2
    exit 1
  fi
  log "smtp: starting aiosmtpd ($mode) on 127.0.0.1:$port"
  spawn "aiosmtpd-$port" "$smtp_venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$port" "$@"
  wait_until 15 smtp_answers "$port" "$mode" && return 0
  echo "smtp: aiosmtpd ($mode) not answering on 127.0.0.1:$port after 15 s (see $SERVICE_LOGS/aiosmtpd-$port.log)" >&2
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
unset -f smtp_answers smtp_prepare smtp_start
unset smtp_venv smtp_certs
