#!/usr/bin/env bash
# A three-node Citus cluster (coordinator + two workers) on local ports, for the points engine's
# distributed mode (docs/deploy.md, decision 0018). Run as root on Debian 12 with PostgreSQL 15.
#
#   scripts/citus-cluster.sh build   build Citus from the vendored source and install it (skipped when
#                                    citus.so of the same version is already installed)
#   scripts/citus-cluster.sh start   initdb (first time) and start ports 6432 (coordinator), 6433, 6434
#   scripts/citus-cluster.sh stop    stop the three nodes
#   scripts/citus-cluster.sh test    build, start, run the ledger/claims/shop/cycles suites on the
#                                    cluster, stop (the cluster is stopped even when tests fail)
#   scripts/citus-cluster.sh ci      the same with the subset CI runs (CI_TESTS below)
#   scripts/citus-cluster.sh url     print the coordinator URL the application connects to
#   scripts/citus-cluster.sh createdb NAME   another database on the running cluster (bench)
#
# Environment: CITUS_TARBALL (default: ../shared/vendor/citus-13.2.2.tar.gz from the repository, then
# /work/shared/vendor/...), CITUS_DATA (default /tmp/citus-data), CITUS_PYTHON (default: python3 of the
# active virtual environment), CITUS_TESTS (override the list of test files), PYTEST_ARGS (extra args).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CITUS_VERSION=13.2.2
PG_MAJOR=15
B=/usr/lib/postgresql/$PG_MAJOR/bin
LIB=/usr/lib/postgresql/$PG_MAJOR/lib
D=${CITUS_DATA:-/tmp/citus-data}
PORTS=(6432 6433 6434)
COORD_URL="postgresql://postgres@127.0.0.1:${PORTS[0]}/postgres"
started=$SECONDS
step() { echo "== citus: $* [$((SECONDS - started)) s]"; }

tarball() {
  for t in "${CITUS_TARBALL:-}" "$ROOT/../shared/vendor/citus-$CITUS_VERSION.tar.gz" \
    "/work/shared/vendor/citus-$CITUS_VERSION.tar.gz"; do
    [ -n "$t" ] && [ -f "$t" ] && { echo "$t"; return; }
  done
  echo "citus-$CITUS_VERSION.tar.gz not found (set CITUS_TARBALL)" >&2
  exit 1
}

installed_version() {
  # default_version of the installed extension control file, empty when not installed
  [ -f "$LIB/citus.so" ] || return 0
  sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "/usr/share/postgresql/$PG_MAJOR/extension/citus.control" \
    2>/dev/null | sed 's/-[0-9]*$//'
}

build() {
  local have
  have=$(installed_version)
  if [ "$have" = "${CITUS_VERSION%.*}" ] || [ "$have" = "$CITUS_VERSION" ]; then
    step "citus $have already installed in $LIB, build skipped"
    return
  fi
  step "build dependencies"
  if ! dpkg -s postgresql-server-dev-$PG_MAJOR liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev \
    libxslt1-dev libpam0g-dev libreadline-dev autoconf flex bison >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq postgresql-server-dev-$PG_MAJOR liblz4-dev libzstd-dev libkrb5-dev libssl-dev \
      libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev autoconf flex bison >/dev/null
  fi
  local src
  src=$(mktemp -d /tmp/citus-build.XXXXXX)
  tar xzf "$(tarball)" -C "$src"
  cd "$src/citus-$CITUS_VERSION"
  # PostgreSQL 15.20 exports have_createdb_privilege(); Citus 13.2.2 also defines a static copy for PG15
  # that no longer compiles: drop Citus's copy (../shared/recipes/citus-on-pg15.md).
  python3 - <<'PY'
p = "src/include/pg_version_compat.h"
s = open(p).read()
k = "static inline bool\nhave_createdb_privilege(void)"
if k in s:
    i = s.index(k)
    j = s.index("\n}\n", i) + 3
    open(p, "w").write(s[:i] + s[j:])
PY
  step "configure"
  ./configure --without-libcurl >/dev/null
  step "make (several minutes on 2 cores)"
  make -s -j"$(nproc)" >/dev/null
  make -s install >/dev/null
  cd "$ROOT"
  rm -rf "$src"
  step "citus $(installed_version) installed"
}

pgctl() { su postgres -c "$B/pg_ctl -D $D/n$1 -l $D/n$1.log -w $2" >/dev/null; }

start() {
  mkdir -p "$D" && chown postgres "$D"
  local p fresh=0
  for p in "${PORTS[@]}"; do
    if [ ! -f "$D/n$p/PG_VERSION" ]; then
      fresh=1
      su postgres -c "$B/initdb -D $D/n$p -A trust -U postgres" >/dev/null
      cat >>"$D/n$p/postgresql.conf" <<CONF
shared_preload_libraries='citus'
port=$p
listen_addresses='127.0.0.1'
unix_socket_directories='$D'
max_connections=200
# the append-only guards are triggers on distributed tables (decision 0018)
citus.enable_unsafe_triggers=on
# a throwaway test cluster: durability off for speed
fsync=off
synchronous_commit=off
full_page_writes=off
CONF
    fi
    if ! su postgres -c "$B/pg_ctl -D $D/n$p status" >/dev/null 2>&1; then
      pgctl "$p" start
    fi
    psql -qX -h 127.0.0.1 -p "$p" -U postgres -c "create extension if not exists citus" >/dev/null
  done
  if [ $fresh = 1 ] || [ "$(psql -qXtA -h 127.0.0.1 -p "${PORTS[0]}" -U postgres \
    -c "select count(*) from pg_dist_node where noderole = 'primary' and isactive")" != 3 ]; then
    psql -qX -h 127.0.0.1 -p "${PORTS[0]}" -U postgres -v ON_ERROR_STOP=1 \
      -c "select citus_set_coordinator_host('127.0.0.1', ${PORTS[0]})" \
      -c "select citus_add_node('127.0.0.1', ${PORTS[1]})" \
      -c "select citus_add_node('127.0.0.1', ${PORTS[2]})" >/dev/null
  fi
  step "cluster up: coordinator $COORD_URL, workers ${PORTS[1]} ${PORTS[2]}"
}

createdb() {
  # Another database on the running cluster (e.g. for bench/county.py beside the tests): created
  # on every node with the extension, the coordinator told about the workers.
  local name=$1 p
  for p in "${PORTS[@]}"; do
    psql -qX -h 127.0.0.1 -p "$p" -U postgres -c "create database \"$name\"" >/dev/null
    psql -qX -h 127.0.0.1 -p "$p" -U postgres -d "$name" -c "create extension citus" >/dev/null
  done
  psql -qX -h 127.0.0.1 -p "${PORTS[0]}" -U postgres -d "$name" -v ON_ERROR_STOP=1 \
    -c "select citus_set_coordinator_host('127.0.0.1', ${PORTS[0]})" \
    -c "select citus_add_node('127.0.0.1', ${PORTS[1]})" \
    -c "select citus_add_node('127.0.0.1', ${PORTS[2]})" >/dev/null
  step "database $name: postgresql://postgres@127.0.0.1:${PORTS[0]}/$name"
}

stop() {
  local p
  for p in "${PORTS[@]}"; do
    if [ -f "$D/n$p/PG_VERSION" ] && su postgres -c "$B/pg_ctl -D $D/n$p status" >/dev/null 2>&1; then
      pgctl "$p" stop
    fi
  done
  step "cluster stopped"
}

# The named suites: ledger, claims, shop (redemption) and cycles, domain and API.
FULL_TESTS="tests/points/test_ledger.py tests/points/test_ledger_concurrency.py tests/points/test_ledger_crash.py
  tests/points/test_ledger_stateful.py tests/points/test_ledger_tamper.py tests/points/test_ledger_tamper_references.py
  tests/points/test_claims.py tests/points/test_rules2_claims.py tests/api/test_claims_api.py
  tests/points/test_redemption.py tests/points/test_redemption_concurrency.py tests/api/test_shop_api.py
  tests/api/test_shop_pages.py tests/points/test_cycles.py tests/points/test_cycles_processes.py
  tests/api/test_cycles_cli.py"
# What CI runs (1 min 43 s on this 2-core machine at load average ~12, cluster start and stop
# included): the ledger (with its concurrent clients), claims, shop (domain redemptions racing,
# the shop API) and cycle suites; the full list above (tamper, crash, stateful, pages, processes,
# CLIs) is `test`.
CI_TESTS="tests/points/test_ledger.py tests/points/test_ledger_concurrency.py tests/points/test_claims.py
  tests/points/test_redemption_concurrency.py tests/api/test_shop_api.py tests/points/test_cycles.py"

run_tests() {
  local py=${CITUS_PYTHON:-python3}
  if [ -z "${CITUS_PYTHON:-}" ] && [ -n "${VIRTUAL_ENV:-}" ]; then py=$VIRTUAL_ENV/bin/python; fi
  local files=${CITUS_TESTS:-$1}
  step "tests on the cluster: $(echo "$files" | wc -w) files"
  # one database, distributed with 4 shards per table (2 per worker), emptied before each test
  # shellcheck disable=SC2086
  POINTS_TEST_DATABASE_URL=$COORD_URL POINTS_DISTRIBUTED=citus POINTS_CITUS_SHARD_COUNT=4 \
    "$py" -m pytest -p no:cacheprovider -n 0 -q ${PYTEST_ARGS:-} $files
  step "tests done"
}

case "${1:-}" in
build) build ;;
start) start ;;
stop) stop ;;
url) echo "$COORD_URL" ;;
createdb) createdb "${2:?name}" ;;
test | ci)
  build
  start
  trap stop EXIT
  if [ "$1" = ci ]; then run_tests "$CI_TESTS"; else run_tests "$FULL_TESTS"; fi
  ;;
*)
  sed -n '2,23p' "$0"
  exit 2
  ;;
esac
