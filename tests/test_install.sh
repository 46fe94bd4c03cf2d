#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# make install into a DESTDIR puts every file in place (the binary, which
# embeds its BPF objects, the man page, bash completion, the systemd unit
# and an example config); the man page renders without warnings and names
# every command and counter; the unit passes systemd-analyze verify; make
# deb builds a package that installs into a fresh root, whose sockaccel
# runs. Nothing is installed on this machine.
. "$(dirname "$0")/lib.sh"
require_root

TMPD=$(mktemp -d /tmp/sa-install.XXXXXX)
on_exit "rm -rf '$TMPD'"
D=$TMPD/dest
check "make install DESTDIR PREFIX=/usr" make -s -C "$TOP" install DESTDIR="$D" PREFIX=/usr
for f in usr/sbin/sockaccel usr/share/man/man8/sockaccel.8 usr/share/bash-completion/completions/sockaccel \
	lib/systemd/system/sockaccel.service usr/share/doc/sockaccel/sockaccel.conf.example; do
	check "installed: /$f" [ -s "$D/$f" ]
done
check "the installed binary runs: $("$D/usr/sbin/sockaccel" --version)" "$D/usr/sbin/sockaccel" --version
check "the unit runs the installed binary" grep -q '^ExecStart=/usr/sbin/sockaccel load --config /etc/sockaccel.conf$' \
	"$D/lib/systemd/system/sockaccel.service"
check "make install PREFIX=/usr/local puts the unit under the prefix" \
	sh -c "make -s -C '$TOP' install DESTDIR='$TMPD/local' && [ -s '$TMPD/local/usr/local/lib/systemd/system/sockaccel.service' ]"

# The man page: renders with no warning, and documents every command and counter.
if command -v man > /dev/null; then
	warn=$(MANWIDTH=80 man --warnings -l "$D/usr/share/man/man8/sockaccel.8" 2>&1 > /dev/null)
	check "man -l renders sockaccel(8) without warnings${warn:+: $warn}" [ -z "$warn" ]
	page=$(MANWIDTH=200 man -l "$D/usr/share/man/man8/sockaccel.8" 2> /dev/null)
	missing=
	for c in load attach detach unload status stats trace policy exe probe metrics; do
		grep -qE "^ +$c( |$)" <<< "$page" || missing="$missing $c"
	done
	check "the man page documents every command${missing:+ (missing:$missing)}" [ -z "$missing" ]
	SOCKACCEL_PIN_ROOT=$SOCKACCEL_PIN_ROOT "$SA" load > /dev/null || die "load failed"
	names=$("$SA" -j stats | python3 -c 'import json, sys; d = json.load(sys.stdin); groups = [k for k in d if k.endswith("_reasons")]; print(" ".join([k for k in d] + list(d["pass_reasons"])))')
	"$SA" unload --forget > /dev/null
	missing=
	for n in $names; do grep -qw "$n" <<< "$page" || missing="$missing $n"; done
	check "the man page names every counter and pass reason${missing:+ (missing:$missing)}" [ -z "$missing" ]
else
	log "SKIP: man is not installed (apt-get install man-db)"
fi

# bash completion: loads, and completes commands and options.
comp=$(bash -c ". '$D/usr/share/bash-completion/completions/sockaccel'
COMP_WORDS=(sockaccel at); COMP_CWORD=1; _sockaccel; echo \"\${COMPREPLY[*]}\"
COMP_WORDS=(sockaccel load --cro); COMP_CWORD=2; _sockaccel; echo \"\${COMPREPLY[*]}\"")
check "bash completion completes 'at' to attach and '--cro' to --cross-netns ($comp)" \
	[ "$comp" = "attach
--cross-netns" ]

# The unit, with the binary and man page where the DESTDIR put them.
if command -v systemd-analyze > /dev/null; then
	sed "s|/usr/sbin/|$D/usr/sbin/|g" "$D/lib/systemd/system/sockaccel.service" > "$TMPD/sockaccel.service"
	out=$(MANPATH="$D/usr/share/man" systemd-analyze verify "$TMPD/sockaccel.service" 2>&1)
	check "systemd-analyze verify sockaccel.service${out:+: $out}" [ -z "$out" ]
else
	log "SKIP: systemd-analyze is not installed"
fi

# The Debian package, installed into a fresh root.
check "make deb" make -s -C "$TOP" deb
deb=$(ls -t "$TOP"/build/sockaccel_*.deb 2> /dev/null | head -1)
check "the package was built ($deb)" [ -s "$deb" ]
R=$TMPD/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/usr/share/man/man8"
: > "$R/var/lib/dpkg/status"
check "dpkg --root installs it into a fresh root" \
	sh -c "dpkg --root='$R' --force-depends --force-not-root -i '$deb' > /dev/null 2>&1"
check "dpkg lists it installed there" sh -c "dpkg --root='$R' -s sockaccel | grep -q '^Status: install ok installed'"
check "the packaged binary runs: $("$R/usr/sbin/sockaccel" --version 2>&1)" "$R/usr/sbin/sockaccel" --version
for f in lib/systemd/system/sockaccel.service usr/share/man/man8/sockaccel.8 \
	usr/share/bash-completion/completions/sockaccel; do
	check "the package carries /$f" [ -s "$R/$f" ]
done
finish
