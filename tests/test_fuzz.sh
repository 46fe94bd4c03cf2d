#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Input: every command, fed random and hostile arguments, built with
# AddressSanitizer and UBSan (make SANITIZE=1): no crash, no sanitizer
# report, exit 0 or 1, errors in one line. And a user without
# capabilities gets one line and exit 1 from every command, and cannot
# open a pin. Runs on a private pin root; the only cgroups it names are
# its own child cgroup and paths that do not exist.
. "$(dirname "$0")/lib.sh"
require_root
require_not_loaded

RUNS=${SA_FUZZ_RUNS:-400}
make -s -C "$TOP" SANITIZE=1 build/san/sockaccel > /dev/null 2>&1 ||
	die "make SANITIZE=1 failed (gcc's libasan/libubsan missing?)"
SAN=$TOP/build/san/sockaccel
CG=$(new_cgroup fuzz)
TMPD=$(mktemp -d /tmp/sa-fuzz.XXXXXX)
on_exit "rm -rf '$TMPD'"
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

long=$(printf 'x%.0s' $(seq 5000))
TOKENS=(load attach detach unload status stats policy exe probe metrics help
	--cgroup --backlog-limit --cross-netns --short-conns --lock-spin-us --probation
	--probation-time --max-sockets --forget --config --help -h -j -v -V --version
	show add default clear set forget list include exclude accelerate tcp learn
	--port --local-port --remote-port --local-addr --remote-addr
	on off 0 1 -1 7 65535 65536 99999999999999999999 4K 8M 12x 1-2 2-1 10.0.0.0/8 ::1/129
	1.2.3.4/33 fe80::/10 "" " " "%s%n%x" "$long" /nonexistent /tmp /dev/null "$CG"
	"$TMPD" "$TMPD/conf" 1 2147483647 -2147483648 "é" $'a\nb' '--' '-')
printf 'load --backlog-limit 9x\n' > "$TMPD/conf"

# one RUN ARGS...: run the sanitized binary; check the result.
bad=0
one() {
	local out err rc
	timeout -k 2 20 "$SAN" "$@" > "$TMPD/out" 2> "$TMPD/err"
	rc=$?
	if grep -qE 'AddressSanitizer|runtime error|LeakSanitizer' "$TMPD/err"; then
		bad=$((bad + 1)); log "SANITIZER: sockaccel $(printf '%q ' "$@")"; sed -n 1,12p "$TMPD/err"; return
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
		bad=$((bad + 1)); log "exit $rc: sockaccel $(printf '%q ' "$@")"; head -3 "$TMPD/err"; return
	fi
	# No command at all: the usage, as every command-line tool does.
	if [ "$rc" -eq 1 ] && [ "$(wc -l < "$TMPD/err")" -gt 1 ] && ! head -1 "$TMPD/err" | grep -q '^Usage: sockaccel '; then
		bad=$((bad + 1)); log "$(wc -l < "$TMPD/err") error lines: sockaccel $(printf '%q ' "$@")"; head -3 "$TMPD/err"
	fi
}
RANDOM=4242
for i in $(seq "$RUNS"); do
	n=$((RANDOM % 6 + 1)) args=()
	for _ in $(seq $n); do args+=("${TOKENS[RANDOM % ${#TOKENS[@]}]}"); done
	# Commands that wait for a signal are not fuzzed for that.
	case " ${args[*]} " in *" metrics "*--listen*|*" trace "*|*" stats "*" -w"*) continue ;; esac
	one "${args[@]}"
done
# Every command with every one of its options missing its value.
for c in load attach detach unload status stats policy exe probe metrics; do
	one "$c" --nope
	one "$c" ""
	one "$c" "$long"
done
"$SAN" unload --forget > /dev/null 2>&1
check "$RUNS random command lines under ASan/UBSan: no crash, exit 0 or 1, one error line" [ "$bad" -eq 0 ]
check "the fuzzing left nothing loaded" [ ! -e "$SOCKACCEL_PIN_ROOT" ]

# No capabilities: one line, exit 1, every command; the pins stay closed.
"$SA" load > /dev/null || die "load failed"
if command -v setpriv > /dev/null; then
	for cmdline in "load" "attach --cgroup $CG" "detach --cgroup $CG" "unload" "status" "stats" \
		"trace --duration 1" "policy show --cgroup $CG" "exe list" "probe" "metrics"; do
		# shellcheck disable=SC2086  # the command line's words
		out=$(setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all "$SA" $cmdline 2>&1 < /dev/null)
		rc=$?
		check "as nobody, '$cmdline': exit 1 ($out)" [ "$rc" -eq 1 ]
		check "as nobody, '$cmdline': one line" [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]
	done
	check "as nobody, the pins cannot be opened" \
		sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups bpftool map show pinned '$SOCKACCEL_PIN_ROOT/sockaccel_config' > /dev/null 2>&1"
	check "as nobody, the pin root cannot be listed" \
		sh -c "! setpriv --reuid=65534 --regid=65534 --clear-groups ls '$SOCKACCEL_PIN_ROOT' > /dev/null 2>&1"
else
	log "SKIP: setpriv missing (util-linux)"
fi
finish
