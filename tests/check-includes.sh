#!/bin/sh
# check-includes.sh DIR...: the engine (daemon/engine) and the shared code
# (daemon/common, include/memtrain) build without libuv, SQLite and
# protobuf. Fails, listing file:line of each offender, when a C source or
# header under a DIR includes one of their headers (uv.h, uv/*, sqlite3.h,
# protobuf-c/*, *.pb-c.h).
[ $# -gt 0 ] || { echo "usage: check-includes.sh DIR..." >&2; exit 2; }
pattern='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^>"]*/)?(uv\.h|uv/[^>"]*|sqlite3(ext)?\.h|protobuf-c/[^>"]*|[^>"]*\.pb-c\.h)[>"]'
status=0
for dir in "$@"; do
    if [ ! -d "$dir" ]; then
        echo "check-includes.sh: $dir: not a directory" >&2
        exit 2
    fi
    found=$(grep -rnE --include='*.c' --include='*.h' "$pattern" "$dir")
    if [ -n "$found" ]; then
        echo "$dir must not include libuv, SQLite or protobuf headers; found:"
        echo "$found"
        status=1
    else
        echo "$dir: no libuv, SQLite or protobuf header included"
    fi
done
exit $status
