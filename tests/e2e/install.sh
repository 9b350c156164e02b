#!/usr/bin/env bash
# tests/e2e/install.sh: installing volperm on a host, for real.
#   cmake_install  `cmake --install` into a DESTDIR puts the binary, the man
#                  page and the bash completion in the usual places
#   completion     the completion script completes commands, options and
#                  values, and offers every long option of `volperm --help`
#   deb            `cpack -G DEB` builds a .deb with those files and Depends
#   dpkg           `dpkg -i` installs it (volperm runs, man finds the page,
#                  bash finds the completion), the systemd recipe
#                  docs/examples/my-app.service verifies and its ExecStartPre
#                  runs with the installed binary; `dpkg -r` removes it all
# Needs root for dpkg (otherwise that step is skipped). Builds into a
# temporary directory (a normal, dynamically linked build).
# Last line: `N passed, N failed, N skipped`; exit 1 if any failed.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
RUNTIME=install

WORK=$(mktemp -d /tmp/vpe2e-install.XXXXXX)
chmod 0755 "$WORK"
DEB_INSTALLED=0
cleanup() {
	if [ "$DEB_INSTALLED" = 1 ]; then
		dpkg -r volperm >/dev/null 2>&1
		dpkg -P volperm >/dev/null 2>&1
	fi
	[ -n "${VOLPERM_E2E_KEEP:-}" ] && echo "install.sh: kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
B=$WORK/build

sc_build() {
	expect 0 cmake -S "$REPO" -B "$B" -G "Unix Makefiles" -DVOLPERM_TESTS=OFF -DCMAKE_BUILD_TYPE=Release
	expect 0 make -C "$B" -j"$(nproc 2>/dev/null || echo 2)"
}

sc_cmake_install() {
	local d=$WORK/destdir
	expect 0 env DESTDIR="$d" cmake --install "$B"
	[ -x "$d/usr/local/bin/volperm" ] || fail "no usr/local/bin/volperm in DESTDIR"
	cmp -s "$d/usr/local/share/man/man1/volperm.1" "$REPO/docs/volperm.1" || fail "usr/local/share/man/man1/volperm.1 is not docs/volperm.1"
	cmp -s "$d/usr/local/share/bash-completion/completions/volperm" "$REPO/contrib/bash-completion/volperm" ||
		fail "usr/local/share/bash-completion/completions/volperm is not contrib/bash-completion/volperm"
	expect 0 "$d/usr/local/bin/volperm" --version
	has "volperm "
	# --prefix /usr, as a distribution would
	expect 0 env DESTDIR="$WORK/destdir-usr" cmake --install "$B" --prefix /usr
	[ -x "$WORK/destdir-usr/usr/bin/volperm" ] && [ -f "$WORK/destdir-usr/usr/share/man/man1/volperm.1" ] &&
		[ -f "$WORK/destdir-usr/usr/share/bash-completion/completions/volperm" ] || fail "--prefix /usr: files missing"
}

# complete WORDS...: the completions bash would offer for the last word
complete_words() {
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE};
		_volperm; printf "%s\n" "${COMPREPLY[@]}"' complete \
		"$REPO/contrib/bash-completion/volperm" "$@"
}

sc_completion() {
	local f=$REPO/contrib/bash-completion/volperm opt missing=""
	expect 0 bash -n "$f"
	expect 0 complete_words volperm ap
	has "apply"
	expect 0 complete_words volperm apply --fsg
	has "--fsgroup-policy"
	expect 0 complete_words volperm apply --fsgroup-policy ""
	has "on-root-mismatch"
	expect 0 complete_words volperm journal ""
	has "export"
	expect 0 complete_words volperm journal export --format ""
	has "getfacl"
	expect 0 complete_words volperm exec --us
	has "--user"
	expect 0 complete_words volperm rollback --
	has "--force"
	hasnt "--owner"
	for opt in $("$B/volperm" --help 2>&1 | grep -oE -- '--[a-z][a-z-]+' | sort -u); do
		grep -qE -- "(^|[ \"])$opt([ \"]|$)" "$f" || missing+=" $opt"
	done
	[ -z "$missing" ] || fail "options of volperm --help missing from the completion:$missing"
}

sc_deb() {
	expect 0 bash -c "cd '$B' && cpack -G DEB"
	local debs=("$B"/volperm_*.deb)
	[ -f "${debs[0]}" ] || fail "cpack made no volperm_*.deb"
	DEB=${debs[0]}
	echo "    $(basename "$DEB"): $(stat -c %s "$DEB") bytes"
	expect 0 dpkg-deb -c "$DEB"
	has "./usr/bin/volperm"
	has "./usr/share/man/man1/volperm.1"
	has "./usr/share/bash-completion/completions/volperm"
	expect 0 dpkg-deb -f "$DEB" Package Version Depends
	has "Package: volperm"
	has "libacl1"
}

sc_dpkg() {
	local deb
	deb=$(ls "$B"/volperm_*.deb 2>/dev/null | head -n 1)
	[ -n "$deb" ] || fail "no .deb (the deb step failed)"
	if [ "$(id -u)" != 0 ]; then
		echo "    dpkg -i needs root"
		exit 77
	fi
	if dpkg -s volperm >/dev/null 2>&1 || [ -e /usr/bin/volperm ]; then
		echo "    volperm is already installed on this machine; not touching it"
		exit 77
	fi
	expect 0 dpkg -i "$deb"
	DEB_INSTALLED=1
	expect 0 /usr/bin/volperm --version
	has "volperm "
	expect 0 dpkg -L volperm
	has "/usr/share/bash-completion/completions/volperm"
	if command -v man >/dev/null 2>&1; then
		expect 0 man -w volperm
		has "/usr/share/man/man1/volperm.1"
	fi
	expect 0 bash -c '. /usr/share/bash-completion/completions/volperm && complete -p volperm'
	has "_volperm"

	# The systemd recipe with the installed binary: it verifies (the app's own
	# binary replaced by /bin/true), and its ExecStartPre runs on a scratch
	# directory standing in for /srv/app-data.
	local unit=$REPO/docs/examples/my-app.service u=$WORK/systemd pre
	mkdir -p "$u"
	sed 's|/usr/local/bin/my-app|/bin/true|' "$unit" >"$u/my-app.service"
	command -v man >/dev/null 2>&1 || sed -i '/^Documentation=man:/d' "$u/my-app.service"
	if command -v systemd-analyze >/dev/null 2>&1; then
		expect 0 systemd-analyze verify "$u/my-app.service"
	else
		echo "    systemd-analyze is missing: the unit is not verified"
	fi
	pre=$(sed -n 's/^ExecStartPre=+//p' "$unit")
	case $pre in
	"/usr/bin/volperm apply "*" /srv/app-data") ;;
	*) fail "unexpected ExecStartPre in my-app.service: $pre" ;;
	esac
	mkdir -p "$u/srv/app-data/sub"
	echo x >"$u/srv/app-data/sub/f"
	chown -R 1000:1000 "$u/srv/app-data"
	read -r -a argv <<<"${pre% /srv/app-data} $u/srv/app-data"
	expect 0 env VOLPERM_JOURNAL_DIR="$u/journal" "${argv[@]}"
	has "changes:   3 entries"
	owners "$u/srv/app-data" 1001:1001
	expect 0 env VOLPERM_JOURNAL_DIR="$u/journal" "${argv[@]}" # the next start: O(1)
	expect 0 /usr/bin/volperm journal list --journal-dir "$u/journal" "$u/srv/app-data"
	has "committed"
	expect 0 /usr/bin/volperm rollback --journal-dir "$u/journal" "$u/srv/app-data"
	owners "$u/srv/app-data" 1000:1000

	expect 0 dpkg -r volperm
	DEB_INSTALLED=0
	[ ! -e /usr/bin/volperm ] || fail "/usr/bin/volperm is still there after dpkg -r"
	[ ! -e /usr/share/man/man1/volperm.1 ] || fail "the man page is still there after dpkg -r"
	[ ! -e /usr/share/bash-completion/completions/volperm ] || fail "the completion is still there after dpkg -r"
	expect 0 dpkg -P volperm
	if dpkg -s volperm >/dev/null 2>&1; then
		fail "dpkg still knows volperm after dpkg -r and -P: $(dpkg -s volperm | grep Status)"
	fi
}

run_scenario build
if [ "$FAILED" -gt 0 ]; then
	skip_all "the build failed (counted above)" cmake_install completion deb dpkg
else
	for s in cmake_install completion deb dpkg; do
		run_scenario "$s"
	done
fi
e2e_summary
