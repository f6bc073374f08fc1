#!/usr/bin/env bash
# What the field build saves, in one run (make size):
#  1. builds the development binary (default tags: the demo, benchmarks,
#     trainer and test rigs) and the field binary (-tags field, what the
#     releases and the .deb ship) for arm64 with the release flags
#     (cross/build.sh), and prints both sizes and the ratio;
#  2. builds both for amd64 and measures the resident memory of the agent
#     (idle, then with 50 sleeping services) and the peer run from each, side
#     by side, with `nexfield bench rss` of the development binary, which
#     hosts NATS with JetStream, the Nex node stand-in and the simulated
#     channel.
#   cross/size.sh [TARGET...]   targets for step 1 (default arm64)
# Environment: GO (go), RSS_FLAGS (more bench rss flags, e.g.
# "--env GOMEMLIMIT=12MiB"), DETAIL=1 also prints the field binary's biggest
# packages (go tool nm -size of an unstripped build) and what its package
# initialisers allocate (GODEBUG=inittrace=1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
GO="${GO:-go}"
[ $# -gt 0 ] || set -- arm64
work="$(mktemp -d /tmp/nexfield-size.XXXXXX)"
trap 'rm -rf "$work"' EXIT
build() { # build KIND TARGET...
	local tags=""
	[ "$1" = field ] && tags=field
	local kind="$1"
	shift
	BUILD_TAGS="$tags" DIST="$work/$kind" VERSION=size GO="$GO" "$here/build.sh" "$@" >/dev/null
}
mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }

for target in "$@"; do
	build development "$target"
	build field "$target"
	dev=$(stat -c %s "$work/development/nexfield_linux_$target")
	field=$(stat -c %s "$work/field/nexfield_linux_$target")
	echo "$target, static, stripped (cross/build.sh flags):"
	printf '  development build  %10d bytes  %s\n' "$dev" "$(mib "$dev")"
	printf '  field build        %10d bytes  %s  (goal <= 14 MiB: %s)\n' "$field" "$(mib "$field")" \
		"$([ "$field" -le $((14 << 20)) ] && echo met || echo missed)"
	awk -v f="$field" -v d="$dev" 'BEGIN { printf "  field / development  %.3f (%.1f MB less)\n", f / d, (d - f) / 1e6 }'
done

echo
build development amd64
build field amd64
mkdir -p "$work/rss"
cp "$work/field/nexfield_linux_amd64" "$work/rss/field"
cp "$work/development/nexfield_linux_amd64" "$work/rss/development"
echo "amd64, resident memory (goals for the field build: agent idle <= 16 MiB, with 50 services <= 22 MiB, peer <= 18 MiB):"
# shellcheck disable=SC2086 # RSS_FLAGS is a list of flags
"$work/rss/development" bench rss ${RSS_FLAGS:-} "$work/rss/field" "$work/rss/development" | sed 's/^/  /'

if [ -n "${DETAIL:-}" ]; then
	echo
	echo "field build, arm64, biggest packages (go tool nm -size of an unstripped build; symbols only:"
	echo "the stripped file also holds the pclntab and type data, which nm leaves unattributed):"
	(cd "$here/.." && CGO_ENABLED=0 GOOS=linux GOARCH=arm64 "$GO" build -tags field -trimpath -buildvcs=false \
		-o "$work/field_arm64_syms" ./cmd/nexfield)
	# Sorted by address, so that the zero-filled sections (from runtime.bss
	# on), which take no room in the file, are left out.
	"$GO" tool nm -size -sort address "$work/field_arm64_syms" | awk '
		$4 == "runtime.bss" { skip = 1 }
		!skip && $3 != "U" {
			name = $4
			if (name == "go:func.*") { tot["(go:func.*, function metadata)"] += $2; next }
			sub(/^go:itab\.\*?/, "", name); sub(/^type:\.(eq|hash)\./, "", name)
			if (name ~ /^(type|go):/) { tot["(type data)"] += $2; next }
			p = name; sub(/[(\[].*/, "", p)
			n = split(p, seg, "/"); last = seg[n]; sub(/\..*/, "", last)
			pkg = (n > 1 ? substr(p, 1, length(p) - length(seg[n])) : "") last
			tot[pkg] += $2
		}
		END { for (p in tot) { printf "%10d  %s\n", tot[p], p; all += tot[p] }; printf "%10d  (all symbols)\n", all }' |
		sort -rn | sed -n '1,26s/^/  /p'
	echo
	echo "field build, amd64, package initialisers by bytes allocated (GODEBUG=inittrace=1 nexfield version):"
	GODEBUG=inittrace=1 "$work/rss/field" version 2>"$work/inittrace" >/dev/null
	awk '/^init / { printf "%10d bytes %6d allocs %7.2f ms  %s\n", $8, $10, $5, $2 }' "$work/inittrace" | sort -rn | sed -n '1,8s/^/  /p'
	awk '/^init / { n++; ms += $5; b += $8 } END { printf "  %8d bytes in all %d initialisers, %.1f ms\n", b, n, ms }' "$work/inittrace"
fi
