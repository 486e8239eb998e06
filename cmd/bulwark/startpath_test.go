package main

import (
	"os/exec"
	"strings"
	"testing"
)

// startPathForbidden are packages, or module paths ending in "/", that
// must not be linked into the bulwark binary: every container start maps
// it and re-executes it as the container's init, so its size and its
// package inits are paid per start (docs/ARCHITECTURE.md, "Two
// binaries"). They belong to bulwark-tools, through pkg/userface/tools.
var startPathForbidden = []string{
	"net/http/",
	"crypto/tls/",
	"github.com/google/go-containerregistry/", // but startPathAllowed
	"github.com/klauspost/compress/",
	"github.com/opencontainers/go-digest", // compiles regexps at start-up
	"github.com/docker/cli/",
	"sigs.k8s.io/yaml",
	"go.yaml.in/yaml/",
	"gopkg.in/yaml.v2", "gopkg.in/yaml.v3",
	"github.com/bulwark-sec/bulwark/pkg/userface/tools",
	"github.com/bulwark-sec/bulwark/pkg/image/fetch",
	"github.com/bulwark-sec/bulwark/pkg/audit",
}

// startPathAllowed are exceptions to startPathForbidden: the image config
// types that `run IMAGE` reads (plain structs and encoding/json).
var startPathAllowed = []string{
	"github.com/google/go-containerregistry/pkg/v1",
	"github.com/google/go-containerregistry/pkg/v1/types",
}

// TestStartPathStaysLight fails when a heavy dependency creeps back into
// the bulwark binary, whichever package brings it: the error names the
// chain of imports from cmd/bulwark.
func TestStartPathStaysLight(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "list", "-tags", "osusergo,netgo", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	imports := map[string][]string{}
	var deps []string
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		imports[f[0]] = f[1:]
		deps = append(deps, f[0])
	}
	if len(deps) < 50 {
		t.Fatalf("go list -deps listed %d packages; the test cannot judge", len(deps))
	}
	for _, p := range deps {
		if forbidden(p) {
			t.Errorf("the bulwark binary links %s: %s (move the flow to pkg/userface/tools, which runs in bulwark-tools)",
				p, strings.Join(importChain(imports, "github.com/bulwark-sec/bulwark/cmd/bulwark", p), " -> "))
		}
	}
}

func forbidden(p string) bool {
	for _, a := range startPathAllowed {
		if p == a {
			return false
		}
	}
	for _, f := range startPathForbidden {
		if p == f || strings.HasSuffix(f, "/") && (strings.HasPrefix(p, f) || p == strings.TrimSuffix(f, "/")) {
			return true
		}
	}
	return false
}

// importChain is a shortest import path from one package to another.
func importChain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{to}
}

func TestForbidden(t *testing.T) {
	for p, want := range map[string]bool{
		"net/http":           true,
		"net/http/httptrace": true,
		"net":                false,
		"github.com/google/go-containerregistry/pkg/v1":        false,
		"github.com/google/go-containerregistry/pkg/v1/remote": true,
		"github.com/google/go-containerregistry/pkg/name":      true,
		"github.com/klauspost/compress":                        true,
		"github.com/klauspost/compress/zstd":                   true,
		"go.yaml.in/yaml/v2":                                   true,
		"github.com/bulwark-sec/bulwark/pkg/image":             false,
		"github.com/bulwark-sec/bulwark/pkg/audit":             true,
	} {
		if got := forbidden(p); got != want {
			t.Errorf("forbidden(%q) = %v, want %v", p, got, want)
		}
	}
}
