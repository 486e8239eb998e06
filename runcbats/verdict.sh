#!/usr/bin/env bash
# Judges a TAP file of runc's suite against the exclusion list: prints the
# counts, and fails on a failure the list does not name.
#
# usage: runcbats/verdict.sh TAP EXCLUDED [RUNTIME]
# EXCLUDED: one "test name | reason" a line; # starts a comment. The list
# applies to bulwark only: for runc every failure is reported, none judged.
set -euo pipefail
tap=$1 excluded=$2 runtime=${3:-bulwark}
awk -v runtime="$runtime" -F' [|] ' '
	FNR == NR {
		if ($0 ~ /^[[:space:]]*(#|$)/) next
		if (NF < 2 || $2 == "") { printf "%s:%d: no reason after \" | \"\n", FILENAME, FNR; bad = 1; next }
		reason[$1] = $2
		next
	}
	{ sub(/\r$/, "") }  # script(1) gives the TAP CRLF line ends
	/^(not )?ok [0-9]+ / {
		failed = (substr($0, 1, 4) == "not ")
		line = $0
		sub(/^(not )?ok [0-9]+ /, "", line)
		skip = (line ~ / # skip/)
		sub(/ # skip.*$/, "", line)
		sub(/ in [0-9]+ms$/, "", line)
		total++
		if (skip) { skipped++; next }
		if (!failed) {
			passed++
			if (runtime == "bulwark" && line in reason) stale[++nstale] = line
			next
		}
		nfailed++
		if (runtime != "bulwark") { unexpected[++nun] = line; next }
		if (line in reason) { excl[++nexcl] = line; next }
		unexpected[++nun] = line
	}
	END {
		if (bad) exit 2
		if (total == 0) { print "verdict: no test results in the TAP (did bats run?)"; exit 1 }
		printf "verdict (%s): %d tests, %d passed, %d failed, %d skipped\n", runtime, total, passed, nfailed, skipped
		if (runtime != "bulwark") {
			for (i = 1; i <= nun; i++) printf "  failed: %s\n", unexpected[i]
			exit 0
		}
		printf "  %d failures are excluded (runcbats/excluded.txt says why)\n", nexcl
		for (i = 1; i <= nstale; i++) printf "  note: excluded but passed (drop it from the list?): %s\n", stale[i]
		for (i = 1; i <= nun; i++) printf "  UNEXPECTED failure: %s\n", unexpected[i]
		exit nun > 0
	}
' "$excluded" "$tap"
