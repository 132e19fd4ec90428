# Sourced by scripts/test.sh and scripts/bench.sh: a throwaway PostgreSQL
# cluster on a free loopback port, from Debian's binaries.
#
#   start_throwaway_postgres   installs the server package when absent (as root),
#                              initdb's a temporary cluster, starts it, exports
#                              IAM_TEST_POSTGRES_URL, and stops and removes the
#                              cluster when the calling shell exits (also on failure).

postgres_bin_dir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

ensure_postgres_installed() {
    if postgres_bin_dir >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "PostgreSQL server binaries are missing (no /usr/lib/postgresql/*/bin/initdb)." >&2
        echo "Install them with: sudo apt-get install -y postgresql" >&2
        return 1
    fi
    echo "==> installing PostgreSQL from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    postgres_bin_dir >/dev/null
}

free_loopback_port() {
    if command -v python3 >/dev/null; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return
    fi
    local port
    while :; do
        port=$(( 20000 + RANDOM % 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# Runs a PostgreSQL binary as the user that owns the cluster: the server
# refuses to run as root, so root runs it as the `postgres` system user.
as_cluster_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

stop_throwaway_postgres() {
    if [ -n "${PG_THROWAWAY_DIR:-}" ] && [ -d "$PG_THROWAWAY_DIR" ]; then
        as_cluster_owner "$PG_THROWAWAY_BIN/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_THROWAWAY_DIR"
    fi
}

start_throwaway_postgres() {
    ensure_postgres_installed || return 1
    PG_THROWAWAY_BIN=$(postgres_bin_dir)
    PG_THROWAWAY_DIR=$(mktemp -d -t iam-postgres.XXXXXX)
    trap stop_throwaway_postgres EXIT
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$PG_THROWAWAY_DIR"
    fi
    local port
    port=$(free_loopback_port)
    as_cluster_owner "$PG_THROWAWAY_BIN/initdb" -D "$PG_THROWAWAY_DIR/data" -U postgres \
        --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$PG_THROWAWAY_DIR/initdb.log" 2>&1 \
        || { cat "$PG_THROWAWAY_DIR/initdb.log" >&2; return 1; }
    as_cluster_owner "$PG_THROWAWAY_BIN/pg_ctl" -D "$PG_THROWAWAY_DIR/data" -w -t 60 \
        -l "$PG_THROWAWAY_DIR/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$PG_THROWAWAY_DIR -c max_connections=300 -c synchronous_commit=on -c fsync=on" \
        start >/dev/null \
        || { cat "$PG_THROWAWAY_DIR/server.log" >&2; return 1; }
    export IAM_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "==> throwaway PostgreSQL $("$PG_THROWAWAY_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}
