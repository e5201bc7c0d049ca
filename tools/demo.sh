#!/bin/sh
# make demo: shows the current capability on something real.
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
LGRPC_TOP=$top; . tools/env.sh lua5.4
if [ -f examples/route_guide/demo.sh ]; then exec sh examples/route_guide/demo.sh; fi
exec sh examples/proto_demo.sh
