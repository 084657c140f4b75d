#!/usr/bin/env bash
# The dependency direction of the tree (README.md, "Development"): each
# folder may include only the folders below it. An include that breaks it
# fails here, not in a review months later.
#
#   core/image, core/formats   the base only (core/rn_internal.h, resnet.h)
#   core/engine                the base only: no model, plan or file format
#   core/model                 engine, formats
#   core/inspect               model, engine
#   server/, tools/            core's public header (tools/convert.c also
#                              formats/weights.h: it writes what it reads)
#   server/http*.c             the transport: no route's header, no route by name
. "$(dirname "$0")/lib.sh"
cd "$ROOT" || exit 1

# The folder a quoted include of file f names: "sub" for core/sub/..., "base"
# for core's top, "local" for a file beside f, "gen" for C made at build time
# (the ONNX protobuf), "other" otherwise.
folder_of() { # file include
    local dir=${1%/*} inc=$2
    if [ -e "$dir/$inc" ]; then
        echo local
    elif [ -e "core/$inc" ]; then
        case $inc in */*) echo "${inc%%/*}" ;; *) echo base ;; esac
    else
        case $inc in *.pb-c.h) echo gen ;; *) echo other ;; esac
    fi
}

# includes FILE: the quoted includes of FILE, one a line.
includes() { sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$1"; }

violations=()
check_tree() { # dir allowed-folders...
    local dir=$1; shift
    local f inc fold ok a
    for f in $(git ls-files "$dir" | grep -E '\.(c|h)$'); do
        while read -r inc; do
            [ -n "$inc" ] || continue
            fold=$(folder_of "$f" "$inc")
            ok=0
            for a in local "$@"; do [ "$fold" = "$a" ] && ok=1; done
            [ $ok = 1 ] || violations+=("$f includes \"$inc\" ($fold)")
        done < <(includes "$f")
    done
}

check_tree core/image base
check_tree core/formats base gen
check_tree core/engine base
check_tree core/model base engine formats
check_tree core/inspect base engine model
# the base itself: nothing of a subsystem
for f in core/rn_internal.h core/resnet.h core/status.c; do
    while read -r inc; do
        case $(folder_of "$f" "$inc") in local | base) ;; *) violations+=("$f includes \"$inc\"") ;; esac
    done < <(includes "$f")
done
check_eq "core/: every include runs down the layering" "${violations[*]:-}" ""

violations=()
for f in $(git ls-files server tools | grep -E '\.(c|h)$'); do
    while read -r inc; do
        fold=$(folder_of "$f" "$inc")
        case $fold in local | other) continue ;; esac
        [ "$inc" = resnet.h ] && continue
        [ "$f" = tools/convert.c ] && [ "$inc" = formats/weights.h ] && continue
        violations+=("$f includes \"$inc\" (core's internals)")
    done < <(includes "$f")
done
check_eq "server/ and tools/ use core's public header only" "${violations[*]:-}" ""

# The transport knows no routes: server/http*.c include no header that
# declares a handler (a function taking struct request *; the request API
# itself, request.h, is what routes see) and call none by name.
violations=()
for f in server/http*.c; do
    while read -r inc; do
        h=server/$inc
        [ -f "$h" ] || continue
        case $inc in http.h | http_internal.h | request.h) continue ;; esac
        if grep -qE '^[a-z].*\(struct request \*[a-z_]*\)' "$h"; then
            violations+=("$f includes $inc, which declares route handlers")
        fi
    done < <(includes "$f")
    grep -qE '\broutes_dispatch\b|\bv1_[a-z_]+\(|\bv2_[a-z_]+\(' "$f" &&
        violations+=("$f calls a route by name")
done
check_eq "server/http*.c know no route" "${violations[*]:-}" ""

tap_done
