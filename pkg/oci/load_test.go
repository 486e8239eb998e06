package oci

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// writeBundle creates a bundle with a rootfs directory and the given
// config.json contents.
func writeBundle(t testing.TB, config string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// minimal10 is a config as written for runtime-spec 1.0.0: no fields from
// later versions, and the since-deprecated kernel memory limit.
const minimal10 = `{
	"ociVersion": "1.0.0",
	"process": {
		"terminal": false,
		"user": {"uid": 0, "gid": 0},
		"args": ["/bin/sh"],
		"cwd": "/",
		"capabilities": {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]},
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
		"noNewPrivileges": true
	},
	"root": {"path": "rootfs", "readonly": true},
	"hostname": "c",
	"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
	"hooks": {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]},
	"linux": {
		"resources": {
			"devices": [{"allow": false, "access": "rwm"}],
			"memory": {"limit": 104857600, "kernel": 0},
			"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}
		},
		"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}],
		"maskedPaths": ["/proc/kcore"],
		"readonlyPaths": ["/proc/sys"]
	}
}`

func TestLoadBundleVersions(t *testing.T) {
	tests := []struct {
		name   string
		config string
	}{
		{"hand-written 1.0.0", minimal10},
	}
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1", "1.3.0"} {
		s := Example()
		s.Version = v
		tests = append(tests, struct{ name, config string }{"template " + v, mustJSON(t, s)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, warns, err := LoadBundle(writeBundle(t, tt.config), acceptSeccomp)
			if err != nil {
				t.Fatalf("LoadBundle: %v", err)
			}
			if len(warns) != 0 {
				t.Fatalf("unexpected warnings: %q", warns)
			}
			if s == nil || s.Process == nil || len(s.Process.Args) == 0 {
				t.Fatalf("spec not decoded: %+v", s)
			}
		})
	}
}

// TestLoadBundleRuncSpec checks interoperability with configs that the real
// runc writes, including whatever its version adds.
func TestLoadBundleRuncSpec(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc not installed")
	}
	for _, args := range [][]string{{"spec"}, {"spec", "--rootless"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(runc, args...)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("runc %v: %v: %s", args, err, out)
			}
			if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
				t.Fatal(err)
			}
			s, warns, err := LoadBundle(dir, acceptSeccomp)
			if err != nil {
				t.Fatalf("LoadBundle(runc %v): %v", args, err)
			}
			// runc 1.1's template lists ambient capabilities it does not
			// make inheritable; runc >= 1.2 warns about those too.
			warns = slices.DeleteFunc(warns, func(w string) bool { return strings.Contains(w, "can't raise ambient capability") })
			if len(warns) != 0 {
				t.Fatalf("warnings: %q", warns)
			}
			if s.Hostname != "runc" {
				t.Fatalf("hostname = %q", s.Hostname)
			}
		})
	}
}

func TestLoadBundleUnknownFields(t *testing.T) {
	// Build the document by hand so that unknown and oddly-cased keys can
	// be placed at several depths.
	config := `{
	"ociVersion": "1.2.0",
	"topLevelThing": {"a": [1, 2, {"b": null}]},
	"Hostname": "c",
	"root": {"path": "rootfs", "readOnly": true},
	"process": {
		"args": ["sh"], "cwd": "/",
		"user": {"uid": 0, "gid": 0, "nam": "x"},
		"noNewPrivilege": true,
		"rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1, "soft": 1, "sfot": 2}]
	},
	"mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
	"annotations": {"any.key": "is fine"},
	"linux": {
		"fooBar": 1,
		"namespaces": [{"type": "uts"}, {"type": "mount", "extra": true}],
		"sysctl": {"kernel.domainname": "x"},
		"resources": {
			"memory": {"limitt": 5},
			"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 10, "wieght": 1}]},
			"rdmaa": {"mlx": {"hcaHandles": 1}}
		},
		"uidMappings": [],
		"seccomp": null
	},
	"hooks": {"poststop": [{"path": "/bin/true", "timeout": 1}], "poststop": []}
}`
	got, warns, err := LoadBundle(writeBundle(t, config), acceptSeccomp)
	if err != nil {
		t.Fatalf("LoadBundle: %v", err)
	}
	want := []string{
		`config.json: unknown field "topLevelThing" ignored`,
		`config.json: field "Hostname" used as "hostname" (Go matches JSON names case-insensitively; other runtimes will ignore it)`,
		`config.json: field "root.readOnly" used as "root.readonly" (Go matches JSON names case-insensitively; other runtimes will ignore it)`,
		`config.json: unknown field "process.user.nam" ignored`,
		`config.json: unknown field "process.noNewPrivilege" ignored`,
		`config.json: unknown field "process.rlimits[0].sfot" ignored`,
		`config.json: unknown field "linux.fooBar" ignored`,
		`config.json: unknown field "linux.namespaces[1].extra" ignored`,
		`config.json: unknown field "linux.resources.memory.limitt" ignored`,
		`config.json: unknown field "linux.resources.blockIO.weightDevice[0].wieght" ignored`,
		`config.json: unknown field "linux.resources.rdmaa" ignored`,
		`config.json: field "hooks.poststop" appears more than once; the last value wins`,
	}
	if !slices.Equal(warns, want) {
		t.Fatalf("warnings:\n got %q\nwant %q", warns, want)
	}
	if got.Hostname != "c" || !got.Root.Readonly || got.Process.NoNewPrivileges {
		t.Fatalf("decoded values differ from encoding/json semantics: %+v %+v", got.Root, got.Process)
	}
	if w := got.Linux.Resources.BlockIO.WeightDevice[0]; w.Major != 8 || *w.Weight != 10 {
		t.Fatalf("embedded fields not decoded: %+v", w)
	}
}

func TestLoadBundleJSONErrors(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		line, col int
		field     string
		msg       string
	}{
		{
			name:   "trailing comma in array",
			config: "{\n  \"ociVersion\": \"1.0.0\",\n  \"process\": {\n    \"args\": [\"sh\",]\n  }\n}",
			line:   4, col: 19, field: "process.args[1]", msg: "invalid JSON: invalid character ']'",
		},
		{
			name:   "missing comma between fields",
			config: "{\n\t\"ociVersion\": \"1.0.0\"\n\t\"root\": {}\n}",
			line:   3, col: 2, msg: "invalid JSON: invalid character '\"' after object key:value pair",
		},
		{
			name:   "truncated",
			config: `{"ociVersion": "1.0.0", "linux": {"namespaces": [`,
			line:   1, col: 49, field: "linux.namespaces", msg: "unexpected end of JSON input",
		},
		{name: "empty file", config: "", line: 1, col: 1, msg: "unexpected end of JSON input"},
		{name: "trailing garbage", config: "{}\nx", line: 2, col: 1, msg: "invalid character 'x' after top-level value"},
		{
			name:   "string for uint64",
			config: "{\n\"ociVersion\": \"1.0.0\",\n\"process\": {\"rlimits\": [\n {\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024},\n {\"type\": \"RLIMIT_CORE\", \"hard\": \"lots\", \"soft\": 0}]}}",
			line:   5, col: 34, field: "process.rlimits[1].hard", msg: `expected a non-negative integer (64-bit), got string "lots"`,
		},
		{
			name:   "negative uid",
			config: `{"ociVersion": "1.0.0", "process": {"user": {"uid": -1}}}`,
			line:   1, col: 53, field: "process.user.uid", msg: "expected a non-negative integer (32-bit), got number -1",
		},
		{
			name:   "object for string",
			config: `{"ociVersion": {"v": 1}}`,
			line:   1, col: 16, field: "ociVersion", msg: "expected a string, got an object",
		},
		{
			name:   "array for object",
			config: `{"ociVersion": "1.0.0", "linux": {"namespaces": [{"type": "pid"}, []]}}`,
			line:   1, col: 67, field: "linux.namespaces[1]", msg: "expected an object, got an array",
		},
		{
			name:   "map value type",
			config: `{"ociVersion": "1.0.0", "annotations": {"a": 1}}`,
			line:   1, col: 46, field: `annotations["a"]`, msg: "expected a string, got number 1",
		},
		{name: "top level array", config: `[]`, line: 1, col: 1, msg: "expected an object, got an array"},
		{name: "bool for int", config: `{"ociVersion":"1.0.0","process":{"oomScoreAdj":true}}`, line: 1, col: 48, field: "process.oomScoreAdj", msg: "got boolean true"},
		{name: "float for int", config: `{"ociVersion":"1.0.0","process":{"oomScoreAdj":1.5}}`, line: 1, col: 48, field: "process.oomScoreAdj", msg: "got number 1.5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := LoadBundle(writeBundle(t, tt.config), acceptSeccomp)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("err = %v (%T), want *FieldError", err, err)
			}
			if fe.Line != tt.line || fe.Column != tt.col || fe.Field != tt.field || !strings.Contains(fe.Msg, tt.msg) {
				t.Fatalf("got %d:%d field %q msg %q\nwant %d:%d field %q msg containing %q", fe.Line, fe.Column, fe.Field, fe.Msg, tt.line, tt.col, tt.field, tt.msg)
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("%v does not wrap ErrInvalidConfig", err)
			}
		})
	}
}

func TestLoadBundleNotAConfig(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		wantErr error
		msg     string
	}{
		{"no bundle", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, ErrNoConfig, "does not exist"},
		{"no config.json", func(t *testing.T) string { return t.TempDir() }, ErrNoConfig, "config.json does not exist"},
		{"bundle is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "f")
			os.WriteFile(p, nil, 0o644)
			return p
		}, ErrNoConfig, "is \""},
		{"config.json is a fifo", func(t *testing.T) string {
			dir := t.TempDir()
			if err := syscall.Mkfifo(filepath.Join(dir, ConfigFile), 0o644); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrInvalidConfig, "is a named pipe, not a regular file"},
		{"config.json is a directory", func(t *testing.T) string {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, ConfigFile), 0o755)
			return dir
		}, ErrInvalidConfig, "is a directory"},
		{"null config", func(t *testing.T) string { return writeBundle(t, "null") }, ErrInvalidConfig, "ociVersion: missing"},
		{"valid JSON, invalid config", func(t *testing.T) string {
			return writeBundle(t, `{"ociVersion":"1.0.0","root":{"path":"gone"}}`)
		}, ErrInvalidConfig, "root.path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := LoadBundle(tt.setup(t), acceptSeccomp)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.wantErr, tt.msg)
			}
			if s != nil {
				t.Fatal("spec returned along with an error")
			}
		})
	}
}

func TestLoadBundleTooLarge(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: the size is what matters, not the contents.
	if err := f.Truncate(maxConfigSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, _, err = LoadBundle(dir, acceptSeccomp)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "larger than 64 MiB") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadBundleRoundTrip(t *testing.T) {
	// Everything Example sets must survive a write and a load unchanged.
	want := Example()
	got, _, err := LoadBundle(writeBundle(t, mustJSON(t, want)), acceptSeccomp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the spec:\n got %+v\nwant %+v", got, want)
	}
}

func FuzzLoadBundle(f *testing.F) {
	f.Add([]byte(minimal10))
	ex, _ := json.Marshal(Example())
	f.Add(ex)
	rl, _ := json.Marshal(ExampleRootless())
	f.Add(rl)
	f.Add([]byte(`{"ociVersion":"1.0.0","root":{"path":"rootfs"},"linux":{"sysctl":{"net/../x":"1"},"namespaces":[{"type":"network"}]}}`))
	f.Add([]byte(`{"ociVersion":"1.3.0","root":{"path":"rootfs"},"mounts":[{"destination":"/d","source":"/","options":["rbind","ridmap"],"uidMappings":[{"containerID":0,"hostID":1,"size":1}],"gidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}`))
	f.Add([]byte(`{"Process":{"Args":["x"]},"process":{"args":[1]}}`))
	f.Add([]byte("{\"a\":[[[[[[{}]]]]]]"))
	f.Add([]byte(`{"linux":{"resources":{"blockIO":{"weightDevice":[{"major":"8"}]}}}}`))
	// One bundle per worker, rewritten for each input: a fresh TempDir per
	// input made the filesystem, not the parser, the bottleneck.
	dir := writeBundle(f, "")
	f.Fuzz(func(t *testing.T, config []byte) {
		if err := os.WriteFile(filepath.Join(dir, ConfigFile), config, 0o644); err != nil {
			t.Fatal(err)
		}
		s, _, err := LoadBundle(dir, acceptSeccomp)
		if err != nil {
			if s != nil {
				t.Fatal("spec returned with an error")
			}
			// Whatever the bytes, the fault is the config's; an error
			// that is not a config error would be a runtime bug.
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			return
		}
		if s == nil {
			t.Fatal("nil spec without error")
		}
		if err := Validate(s, dir, acceptSeccomp); err != nil {
			t.Fatalf("LoadBundle accepted a spec Validate rejects: %v", err)
		}
	})
}

func TestLoadBundleDeepNesting(t *testing.T) {
	tests := []struct {
		name  string
		depth int
		ok    bool
	}{
		// Unknown fields are skipped by recursion; the depth limit keeps a
		// hostile file from exhausting the stack.
		{"within the limit", 500, true},
		{"beyond encoding/json's limit", 20000, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := `{"ociVersion":"1.0.0","root":{"path":"rootfs"},"x":` +
				strings.Repeat("[", tt.depth) + strings.Repeat("]", tt.depth) + `}`
			_, warns, err := LoadBundle(writeBundle(t, config), acceptSeccomp)
			if tt.ok {
				if err != nil || len(warns) != 1 {
					t.Fatalf("err = %v, warnings %q", err, warns)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "depth") {
				t.Fatalf("err = %v, want a max depth error", err)
			}
		})
	}
}
