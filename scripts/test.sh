#!/usr/bin/env bash
# Runs every test: unit and integration tests (real containers, as root),
# engine tests, fuzz smoke runs, vet and staticcheck. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
export PATH="$PATH:$(go env GOPATH)/bin"
./scripts/setup.sh
[ -x scripts/install-engines.sh ] && ./scripts/install-engines.sh
[ -x scripts/install-vm.sh ] && ./scripts/install-vm.sh  # qemu + a Debian kernel for tests/vm (pure cgroup v2 guest)

echo "== gofmt / go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt would change: $unformatted"; exit 1; fi
go vet ./...
echo "== staticcheck"
command -v staticcheck >/dev/null || GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
staticcheck ./...

echo "== go test"
# -p 1: the integration packages start real containers and engines; running
# packages one at a time keeps a 2-core machine from timing out daemons.
go test -p 1 -count=1 -timeout 40m ./...

echo "== fuzz smoke"
for target in "FuzzLoadBundle ./pkg/oci" "FuzzParseMountOptions ./pkg/oci" "FuzzValidate ./pkg/seccomp" "FuzzUnmarshal ./internal/wire"; do
	set -- $target
	go test -run '^$' -fuzz "^$1\$" -fuzztime 15s "$2"
done
echo "== all tests passed"
