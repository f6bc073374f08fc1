# Shared helpers of the packaging test scripts (sourced).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# need CMD:PACKAGE... installs the Debian packages of missing commands
# (apt-get update at most once per machine).
need() {
	local missing=()
	for pair in "$@"; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair##*:}")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing ${missing[*]}" >&2
		if [ ! -f /var/lib/apt/lists/.nexfield-updated ]; then
			apt-get update -qq >&2 && touch /var/lib/apt/lists/.nexfield-updated
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
	fi
}

fails=0
check() { # check DESCRIPTION COMMAND...
	local what="$1"
	shift
	if "$@" >/dev/null 2>&1; then
		echo "  ok    $what"
	else
		echo "  FAIL  $what"
		fails=$((fails + 1))
	fi
}

# deb_for ARCH prints the newest dist/nexfield_*_ARCH.deb.
deb_for() {
	ls -t "$root"/dist/nexfield_*_"$1".deb 2>/dev/null | head -1
}

# installed_root NAME makes $work (removed on exit unless KEEP is set) and
# in it $r, a Debian root filesystem with the amd64 .deb installed.
installed_root() {
	local deb
	deb="$(deb_for amd64)"
	[ -n "$deb" ] || { echo "no dist/nexfield_*_amd64.deb: run make deb" >&2; exit 1; }
	work="$(mktemp -d "/tmp/nexfield-$1.XXXXXX")"
	trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
	r="$work/root"
	mkdir -p "$r"
	tar -C "$r" -xf "$("$root/packaging/rootfs.sh")"
	chmod 0755 "$r"
	cp "$deb" "$r/tmp/nexfield.deb"
	chroot "$r" dpkg -i /tmp/nexfield.deb >/dev/null
}

# lab_binary builds the development binary into $r/usr/local/bin/nexfield-lab
# for the helper units that stand in for the world around the installed
# field binary (nexfield demo's NATS server and Nex node, radio emulate's
# modules): the field build in the .deb leaves those rigs out.
lab_binary() {
	(cd "$root" && CGO_ENABLED=0 "${GO:-go}" build -trimpath -o "$r/usr/local/bin/nexfield-lab" ./cmd/nexfield)
}

# boot_probe NAME TIMEOUT boots the root filesystem $r under systemd-nspawn
# (console in $work/console.log) until its probe unit powers it off, shows
# what the probe wrote to $r/root/results and fails if it wrote nothing.
boot_probe() {
	local name="$1" limit="$2" t
	t=$(date +%s)
	timeout "$limit" systemd-nspawn -q --register=no --keep-unit -D "$r" -b --console=pipe \
		>"$work/console.log" 2>&1 || true
	if [ ! -s "$r/root/results" ]; then
		echo "$name: the probe recorded nothing; console:" >&2
		tail -40 "$work/console.log" >&2
		exit 1
	fi
	sed 's/^/  | /' "$r/root/results"
	echo "  (boot and probe: $(( $(date +%s) - t )) s)"
}
