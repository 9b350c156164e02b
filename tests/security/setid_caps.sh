#!/usr/bin/env bash
# Case 7: setuid/setgid executables and file capabilities. chown(2) clears
# setuid (non-dirs), setgid (non-dirs with group-execute) and
# security.capability: plan reports each drop (--json "drops", --list
# "mode 4755->0755" / "caps-dropped", summary counters); apply never adds
# them back (not after a second apply either, and not when the new owner is
# root: an app's setuid-1000 file must not become setuid-root); rollback
# restores modes and capabilities exactly.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/seclib.bash"
setup
need_cmd setcap getcap

J=$(new_jdir)
V=$W/vol
mkdir -p "$V/bin" "$V/sgid-dir" "$V/sticky"
for f in suid sgid both sgid-nox suid-nox cap capsuid plain data-cap; do printf '#!/bin/sh\n' >"$V/bin/$f"; done
chown -R 0:0 "$V"
chmod 4755 "$V/bin/suid"
chmod 2755 "$V/bin/sgid"
chmod 6755 "$V/bin/both"
chmod 2745 "$V/bin/sgid-nox"
chmod 4644 "$V/bin/suid-nox"
chmod 0755 "$V/bin/cap" "$V/bin/plain"
chmod 0644 "$V/bin/data-cap"
chmod 4755 "$V/bin/capsuid"
chmod 2775 "$V/sgid-dir"
chmod 1777 "$V/sticky"
setcap cap_net_raw+ep "$V/bin/cap" || die "setcap"
setcap cap_net_bind_service+ep "$V/bin/capsuid" || die "setcap"
# A capability on a file nobody can execute is inert: plan does not probe it
# (documented), but apply journals its drop and rollback restores it.
setcap cap_net_raw+ep "$V/bin/data-cap" || die "setcap"
snap "$V" "$W/v0.snap"

# expected drops per file (relative path -> drops)
cat >"$W/want.drops" <<'EOF'
bin/both	setuid,setgid
bin/cap	caps
bin/capsuid	setuid,caps
bin/data-cap	
bin/plain	
bin/sgid	setgid
bin/sgid-nox	
bin/suid	setuid
bin/suid-nox	setuid
EOF
# drops_of FILE: "relpath<TAB>drops" of the file change events (drops sorted
# in the order setuid, setgid, caps)
drops_of() {
	python3 - "$1" "$V" <<'PY'
import json, sys
root = sys.argv[2] + "/"
order = {"setuid": 0, "setgid": 1, "caps": 2}
for l in open(sys.argv[1]):
    o = json.loads(l)
    if o["event"] == "change" and o["type"] == "file":
        d = sorted(o["drops"], key=lambda x: order.get(x, 9))
        print("%s\t%s" % (o["path"][len(root):], ",".join(d)))
PY
}

vp_expect 0 "plan --json" plan --owner 1001:1001 --json --journal-dir "$J" "$V"
drops_of "$OUT" | sort >"$W/plan.drops"
if cmp -s "$W/want.drops" "$W/plan.drops"; then
	pass "plan: every drop reported (setuid, setgid with g+x only, caps)"
else
	fail "plan: drops differ (want / got):"
	diff "$W/want.drops" "$W/plan.drops" | sed 's/^/    /'
fi
assert_eq "$(jsum "$OUT" setuid_cleared) $(jsum "$OUT" setgid_cleared) $(jsum "$OUT" caps_dropped)" "4 2 2" \
	"plan summary: setuid_cleared 4, setgid_cleared 2, caps_dropped 2"
vp_expect 0 "plan --list" plan --owner 1001:1001 --list --journal-dir "$J" "$V"
assert_file_match "^chown 0:0->1001:1001 mode 4755->0755 $V/bin/suid\$" "$OUT" "--list: mode 4755->0755 for suid"
assert_file_match "^chown 0:0->1001:1001 mode 6755->0755 $V/bin/both\$" "$OUT" "--list: mode 6755->0755 for both"
assert_file_match "^chown 0:0->1001:1001 caps-dropped $V/bin/cap\$" "$OUT" "--list: caps-dropped for cap"
assert_file_match "^chown 0:0->1001:1001 mode 4755->0755 caps-dropped $V/bin/capsuid\$" "$OUT" "--list: mode and caps-dropped for capsuid"
assert_file_match "^chown 0:0->1001:1001 $V/bin/sgid-nox\$" "$OUT" "--list: sgid without g+x keeps its mode"
assert_file_match "setuid cleared 4, setgid cleared 2, capabilities dropped 2" "$OUT" "human summary counts the drops"

vp_expect 0 "apply --json" apply --owner 1001:1001 --json --journal-dir "$J" "$V"
drops_of "$OUT" | sort >"$W/apply.drops"
sed 's/^bin\/data-cap\t$/bin\/data-cap\tcaps/' "$W/want.drops" >"$W/want-apply.drops"
assert_true "apply: the drops it reports are the plan's, and the non-executable file's capability" \
	cmp -s "$W/want-apply.drops" "$W/apply.drops"
modes=$(for f in suid sgid both sgid-nox suid-nox cap capsuid plain; do printf '%s=%s ' $f "$(mode_of "$V/bin/$f")"; done)
assert_eq "$modes" "suid=0755 sgid=0755 both=0755 sgid-nox=2745 suid-nox=0644 cap=0755 capsuid=0755 plain=0755 " "apply: modes after chown, nothing re-added"
assert_eq "$(mode_of "$V/sgid-dir") $(mode_of "$V/sticky")" "2775 1777" "apply: setgid and sticky dirs keep their bits"
assert_eq "$(getcap "$V/bin/cap" "$V/bin/capsuid")" "" "apply: capabilities gone, not re-added"

vp_expect 0 "second apply, another owner" apply --owner 1002:1002 --json --journal-dir "$J" "$V"
assert_eq "$(find "$V" -type f -perm /6000 ! -name sgid-nox -printf '%P ')" "" "second apply: still no setuid/setgid"
assert_eq "$(getcap -r "$V" 2>/dev/null)" "" "second apply: still no capabilities"
vp_expect 0 "rollback of the second apply" rollback --journal-dir "$J" "$V"
vp_expect 0 "rollback of the first apply" rollback --journal-dir "$J" "$V"
snap "$V" "$W/v1.snap"
snap_eq "$W/v0.snap" "$W/v1.snap" "two rollbacks: owners, 4755/2755/6755/2745/4644 and capabilities restored exactly"
assert_match 'cap_net_raw[=+]ep' "$(getcap "$V/bin/cap")" "getcap: cap_net_raw back"
assert_match 'cap_net_raw[=+]ep' "$(getcap "$V/bin/data-cap")" "getcap: the non-executable file's capability back"

# --- the app's setuid file, volume handed to root: never setuid-root ------------
V=$W/app
mkdir -p "$V"
printf '#!/bin/sh\nexec /bin/sh\n' >"$V/shell"
chown -R 1000:1000 "$V"
chmod 4755 "$V/shell"
chmod 2755 "$V"
printf '#!/bin/sh\n' >"$V/gshell"
chown 1000:1000 "$V/gshell"
chmod 2711 "$V/gshell"
snap "$V" "$W/a0.snap"
for pol in "--owner 0:0" "--map 1000:0 --map-gid 1000:0"; do
	# shellcheck disable=SC2086
	vp_expect 0 "apply $pol on the app's setuid-1000 shell" apply $pol --json --journal-dir "$J" "$V"
	assert_eq "$(stat -c '%u:%g %a' "$V/shell" "$V/gshell" | tr '\n' ' ')" "0:0 755 0:0 711 " \
		"$pol: the app's setuid/setgid files are root-owned but NOT setuid/setgid root"
	assert_eq "$(mode_of "$V")" 2755 "$pol: the setgid dir keeps setgid"
	vp_expect 0 "rollback" rollback --journal-dir "$J" "$V"
	snap "$V" "$W/a1.snap"
	snap_eq "$W/a0.snap" "$W/a1.snap" "$pol: rolled back to the app's own 4755/2711"
done

finish
