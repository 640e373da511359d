#!/usr/bin/env bash
# Makes a throw-away PKI for agent <-> collector TLS, with OpenSSL:
#
#   ca.crt            test CA (signs the two below)
#   server.crt/.key   the collector: CN and SAN DNS:localhost, IP:127.0.0.1
#   agent.crt/.key    an agent's client certificate (CN tokenwatch-agent)
#   other-ca.crt      a second CA, unrelated to the first
#   other-agent.crt/.key  a client certificate signed by the second CA, for
#                     tests that prove the collector refuses it
#
#   scripts/make-test-ca.sh OUTDIR [DAYS]    (DAYS defaults to 30)
#
# Keys are EC P-256, mode 0600; the CA keys stay in OUTDIR too. For tests and
# trials only: keep real keys out of the repository and in a real PKI.
set -euo pipefail

die() {
  echo "make-test-ca: $*" >&2
  exit 1
}

[ $# -ge 1 ] && [ $# -le 2 ] || die "usage: scripts/make-test-ca.sh OUTDIR [DAYS]"
OUT=$1
DAYS=${2:-30}
[[ "$DAYS" =~ ^[1-9][0-9]{0,4}$ ]] || die "DAYS must be a number of days, got '$DAYS'"
command -v openssl >/dev/null || die "openssl not found (scripts/install-deps.sh installs it)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
umask 077 # keys are born private

key() { # FILE
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
  chmod 600 "$1"
}

ca() { # NAME SUBJECT
  key "$OUT/$1.key"
  openssl req -x509 -new -key "$OUT/$1.key" -subj "$2" -days "$DAYS" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$OUT/$1.crt"
  chmod 644 "$OUT/$1.crt"
}

leaf() { # NAME CA SUBJECT EXTENSIONS
  key "$OUT/$1.key"
  openssl req -new -key "$OUT/$1.key" -subj "$3" -out "$OUT/$1.csr"
  printf '%s\n' "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature" \
    "authorityKeyIdentifier=keyid" "$4" >"$OUT/$1.ext"
  openssl x509 -req -in "$OUT/$1.csr" -CA "$OUT/$2.crt" -CAkey "$OUT/$2.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
    -extfile "$OUT/$1.ext" -out "$OUT/$1.crt" 2>/dev/null
  rm -f "$OUT/$1.csr" "$OUT/$1.ext"
  chmod 644 "$OUT/$1.crt"
  openssl verify -CAfile "$OUT/$2.crt" "$OUT/$1.crt" >/dev/null || die "$1.crt does not verify"
}

ca ca "/CN=tokenwatch test CA"
leaf server ca "/CN=localhost" \
  "$(printf '%s\n' 'extendedKeyUsage=serverAuth' 'subjectAltName=DNS:localhost,IP:127.0.0.1')"
leaf agent ca "/CN=tokenwatch-agent" "extendedKeyUsage=clientAuth"
ca other-ca "/CN=unrelated test CA"
leaf other-agent other-ca "/CN=tokenwatch-agent" "extendedKeyUsage=clientAuth"

echo "make-test-ca: in $OUT: ca.crt server.crt/.key agent.crt/.key other-ca.crt other-agent.crt/.key (valid $DAYS days)"
