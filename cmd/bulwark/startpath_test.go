package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
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
	"github.com/vbauerster/mpb/", // progress bars: drawn by bulwark-tools
	"sigs.k8s.io/yaml",
	"go.yaml.in/yaml/",
	"gopkg.in/yaml.v2", "gopkg.in/yaml.v3",
	"github.com/bulwark-sec/bulwark/pkg/userface/tools",
	"github.com/bulwark-sec/bulwark/pkg/image/fetch",
	"github.com/bulwark-sec/bulwark/pkg/audit",
	"github.com/containernetworking/cni/", // regexps and result types at init
	"github.com/bulwark-sec/bulwark/pkg/network/cni",
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
	imports := map[string][]string{}
	var deps []string
	for _, f := range goListDeps(t, "{{.ImportPath}} {{join .Imports \" \"}}") {
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

// goListDeps runs go list -deps on cmd/bulwark, as scripts/build.sh builds
// it, and returns each package's line of format, split into fields.
func goListDeps(t *testing.T, format string) [][]string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	out, err := exec.Command(goTool, "list", "-tags", "osusergo,netgo", "-deps", "-f", format, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var lines [][]string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			lines = append(lines, f)
		}
	}
	return lines
}

// TestNoRegexpCompiledAtStartup fails when one of our packages linked into
// bulwark compiles a regexp in a package-level variable: that runs in
// every process of every container start (0.1-0.8 ms each, measured with
// GODEBUG=inittrace=1), used or not. Compile on first use instead
// (sync.OnceValue), or do without.
func TestNoRegexpCompiledAtStartup(t *testing.T) {
	const module = "github.com/bulwark-sec/bulwark/"
	checked := 0
	for _, f := range goListDeps(t, "{{.ImportPath}} {{.Dir}} {{join .GoFiles \" \"}}") {
		if !strings.HasPrefix(f[0], module) || len(f) < 3 {
			continue
		}
		for _, name := range f[2:] {
			path := filepath.Join(f[1], name)
			file, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			checked++
			for _, at := range packageLevelRegexps(file) {
				t.Errorf("%s: %s compiles a regexp when the package is initialised, in every process of every container start; compile it on first use (sync.OnceValue)", path, at)
			}
		}
	}
	if checked < 50 {
		t.Fatalf("checked %d files; the test cannot judge", checked)
	}
}

// packageLevelRegexps names the package-level variables of file whose
// value calls regexp.Compile or MustCompile outside a function literal.
func packageLevelRegexps(file *ast.File) []string {
	var found []string
	for _, d := range file.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.VAR {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for _, v := range vs.Values {
				ast.Inspect(v, func(n ast.Node) bool {
					if _, ok := n.(*ast.FuncLit); ok {
						return false
					}
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
						if x, ok := sel.X.(*ast.Ident); ok && x.Name == "regexp" && strings.Contains(sel.Sel.Name, "Compile") {
							found = append(found, "var "+vs.Names[0].Name)
						}
					}
					return true
				})
			}
		}
	}
	return found
}

func TestPackageLevelRegexps(t *testing.T) {
	for src, want := range map[string]string{
		"var re = regexp.MustCompile(`x`)":                                                  "var re",
		"var (\n\ta = 1\n\tres = []*regexp.Regexp{regexp.MustCompile(`x`)}\n)":              "var res",
		"var re = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`x`) })": "",
		"func f() { re := regexp.MustCompile(`x`); _ = re }":                                "",
	} {
		file, err := parser.ParseFile(token.NewFileSet(), "x.go", "package x\n"+src+"\n", 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(packageLevelRegexps(file), ","); got != want {
			t.Errorf("%s: found %q, want %q", src, got, want)
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
