#!/usr/bin/env bash
# A three-node Citus cluster (coordinator + two workers) on local ports, for the points engine's
# distributed mode (docs/deploy.md, decision 0018). Run as root on Debian 12 with PostgreSQL 15.
#
#   scripts/citus-cluster.sh build   build Citus from the vendored source and install it (skipped when
#                                    citus.so of the same version is already installed)
#   scripts/citus-cluster.sh start   initdb (first time) and start ports 6432 (coordinator), 6433, 6434
#   scripts/citus-cluster.sh stop    stop the three nodes
#   scripts/citus-cluster.sh test    build, start, run every feature's suites on the cluster (honours,
#                                    events and party events on a county distributed at an older
#                                    revision and upgraded), stop (also when tests fail)
#   scripts/citus-cluster.sh ci      the same with the subset CI runs (CI_TESTS below)
#   scripts/citus-cluster.sh url     print the coordinator URL the application connects to
#   scripts/citus-cluster.sh createdb NAME   another database on the running cluster (bench)
#
# Environment: CITUS_TARBALL (default: ../shared/vendor/citus-13.2.2.tar.gz from the repository, then
# /work/shared/vendor/...), CITUS_DATA (default /tmp/citus-data), CITUS_PYTHON (default: python3 of the
# active virtual environment), CITUS_TESTS (override the list of test files; with CITUS_UPGRADE_FROM=REV
# they run on a database distributed at REV and upgraded), PYTEST_ARGS (extra args).
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

# The suites run on a fresh cluster (each folder's files together): the table map and the upgrade
# of a county distributed at older revisions (tests/test_citus_upgrade.py builds its own databases),
# ledger, claims, shop (redemption), cycles, categories, dated settings, boards, domain and API,
# offline sync.
FULL_TESTS="tests/test_distribution.py tests/test_citus_upgrade.py
  tests/points/test_ledger.py tests/points/test_ledger_concurrency.py tests/points/test_ledger_crash.py
  tests/points/test_ledger_stateful.py tests/points/test_ledger_tamper.py tests/points/test_ledger_tamper_references.py
  tests/points/test_claims.py tests/points/test_rules2_claims.py tests/points/test_redemption.py
  tests/points/test_redemption_concurrency.py tests/points/test_cycles.py tests/points/test_cycles_processes.py
  tests/points/test_categories.py tests/points/test_effective_settings.py tests/points/test_boards.py
  tests/points/test_rules2_boards.py
  tests/api/test_claims_api.py tests/api/test_shop_api.py tests/api/test_shop_pages.py tests/api/test_cycles_cli.py
  tests/api/test_board_categories.py tests/api/test_boards_api.py tests/api/test_catalog_categories_io.py
  tests/api/test_offline_sync.py"
# The suites run on a county distributed at revision UPGRADE_FROM and then upgraded to head by
# `points migrate` on the cluster (decision 0025): honours (0013) and events (0014) add tables whose
# foreign keys point at village tables, party events (0021) unique indexes on a distributed table.
UPGRADE_FROM=0012
UPGRADE_TESTS="tests/points/test_honours.py tests/points/test_events.py
  tests/api/test_honours.py tests/api/test_events.py tests/api/test_party_events.py"
# What CI runs (1 min 43 s on this 2-core machine at load average ~12 on a fresh cluster; 3 min 35 s
# at load ~13 on an upgraded one, cluster start and stop included), on a county distributed at UPGRADE_FROM and upgraded: the ledger (with its concurrent
# clients), claims, shop (domain redemptions racing, the shop API) and cycle suites; the full lists
# above are `test`.
CI_TESTS="tests/points/test_ledger.py tests/points/test_ledger_concurrency.py tests/points/test_claims.py
  tests/points/test_redemption_concurrency.py tests/points/test_cycles.py tests/api/test_shop_api.py"

run_tests() {
  # run_tests FILES [REVISION]: with REVISION, the database is distributed at that revision and
  # upgraded to head before the tests (POINTS_CITUS_UPGRADE_FROM, tests/conftest.py)
  local py=${CITUS_PYTHON:-python3}
  if [ -z "${CITUS_PYTHON:-}" ] && [ -n "${VIRTUAL_ENV:-}" ]; then py=$VIRTUAL_ENV/bin/python; fi
  local files=$1 from=${2:-}
  step "tests on the cluster: $(echo "$files" | wc -w) files${from:+, on a county distributed at $from and upgraded}"
  # one database, distributed with 4 shards per table (2 per worker), emptied before each test
  # shellcheck disable=SC2086
  POINTS_TEST_DATABASE_URL=$COORD_URL POINTS_DISTRIBUTED=citus POINTS_CITUS_SHARD_COUNT=4 \
    POINTS_CITUS_UPGRADE_FROM=$from "$py" -m pytest -p no:cacheprovider -n 0 -q ${PYTEST_ARGS:-} $files
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
  if [ -n "${CITUS_TESTS:-}" ]; then
    run_tests "$CITUS_TESTS" "${CITUS_UPGRADE_FROM:-}"
  elif [ "$1" = ci ]; then
    # on a county distributed at UPGRADE_FROM and upgraded: CI covers both the distribution of a
    # fresh schema and the upgrade of a distributed one (the same schema: tests/test_citus_upgrade.py)
    run_tests "$CI_TESTS" "$UPGRADE_FROM"
  else
    status=0
    run_tests "$FULL_TESTS" || status=$?
    run_tests "$UPGRADE_TESTS" "$UPGRADE_FROM" || status=$?
    exit $status
  fi
  ;;
*)
  sed -n '2,19p' "$0"
  exit 2
  ;;
esac
