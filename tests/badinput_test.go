package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

// hostSnap is what the host looked like before a command that must leave
// nothing behind: the network devices in the host's namespace and our own
// children (a detached init that survived a failed create would be one).
type hostSnap struct {
	links    map[string]bool
	children map[int]bool
}

func snapHost(t *testing.T) hostSnap {
	t.Helper()
	return hostSnap{links: hostLinks(t), children: childPids()}
}

func hostLinks(t *testing.T) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatalf("listing host network devices: %v", err)
	}
	m := map[string]bool{}
	for _, e := range ents {
		m[e.Name()] = true
	}
	return m
}

// childPids lists processes whose parent is this test binary.
func childPids() map[int]bool {
	m := map[int]bool{}
	me := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(pid) == me {
			m[pid] = true
		}
	}
	return m
}

func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// pidsMentioning returns the processes whose command line contains any of
// the needles (the container id, the bundle path).
func pidsMentioning(needles ...string) []string {
	var out []string
	me := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == me {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		for _, n := range needles {
			if n != "" && strings.Contains(cl, n) {
				out = append(out, e.Name()+": "+cl)
				break
			}
		}
	}
	return out
}

// assertClean checks that nothing of a container is left on the host: its
// state directory, cgroups and mounts naming it (or its bundle), processes
// naming it, new children of ours and new host network devices. The id may
// be one bulwark refused; then only the bundle and the root tell.
func assertClean(t *testing.T, root, id, bundle string, before hostSnap) {
	t.Helper()
	var found []string
	usableID := id != "" && id != "." && id != ".." && !strings.Contains(id, "/")
	if usableID {
		if _, err := os.Lstat(filepath.Join(root, id)); err == nil {
			found = append(found, "state dir "+filepath.Join(root, id))
		}
		walkCgroups(func(p string) {
			if strings.Contains(filepath.Base(p), id) {
				found = append(found, "cgroup "+p)
			}
		})
	}
	needles := []string{bundle}
	if usableID {
		needles = append(needles, id)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			for _, n := range needles {
				if n != "" && strings.Contains(l, n) {
					found = append(found, "mount: "+l)
					break
				}
			}
		}
	}
	for _, p := range pidsMentioning(needles...) {
		found = append(found, "process "+p)
	}
	for pid := range childPids() {
		if !before.children[pid] {
			cl, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
			found = append(found, "new child "+strconv.Itoa(pid)+": "+strings.ReplaceAll(string(cl), "\x00", " "))
		}
	}
	for l := range hostLinks(t) {
		if !before.links[l] {
			found = append(found, "host network device "+l)
		}
	}
	if len(found) > 0 {
		sort.Strings(found)
		t.Errorf("left behind after %q: %s", id, strings.Join(found, "\n  "))
	}
}

// walkCgroups calls fn for every cgroup directory a container cgroup could
// be (deep enough for /sys/fs/cgroup/<ctrl>/bulwark/<id> and systemd slices).
func walkCgroups(fn func(string)) {
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			return nil
		}
		if p != "/sys/fs/cgroup" {
			fn(p)
		}
		if strings.Count(p, "/") > 7 {
			return filepath.SkipDir
		}
		return nil
	})
}

// rootEntries lists the state root (empty when it does not exist).
func rootEntries(root string) []string {
	ents, _ := os.ReadDir(root)
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func writeRaw(t *testing.T, bundle, config string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// specJSON is the default config as a generic JSON object, for edits the
// typed struct cannot express (wrong types, unknown fields, deletions).
func specJSON(t *testing.T, mutate func(*specs.Spec)) map[string]any {
	t.Helper()
	s := testrootfs.DefaultSpec()
	s.Process.Args = []string{"true"}
	if mutate != nil {
		mutate(s)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBadConfigIsRefusedNamingTheFieldAndLeavesNothing(t *testing.T) {
	valid := func(t *testing.T) string { return mustJSON(t, specJSON(t, nil)) }
	for _, tc := range []struct {
		name string
		// config returns config.json's text; nil keeps a valid one.
		config func(t *testing.T) string
		// bundle changes the bundle directory after config.json is written.
		bundle func(t *testing.T, dir string)
		// want are substrings of stderr (all must appear).
		want []string
	}{
		{name: "truncated JSON", config: func(t *testing.T) string { v := valid(t); return v[:len(v)/2] },
			want: []string{"config.json", "unexpected end"}},
		{name: "trailing garbage", config: func(t *testing.T) string { return valid(t) + "\n}garbage" },
			want: []string{"config.json"}},
		{name: "process.args of the wrong type", config: func(t *testing.T) string {
			m := specJSON(t, nil)
			m["process"].(map[string]any)["args"] = "sh -c true"
			return mustJSON(t, m)
		}, want: []string{"config.json", "process.args"}},
		{name: "ociVersion 2.0.0", config: func(t *testing.T) string {
			m := specJSON(t, nil)
			m["ociVersion"] = "2.0.0"
			return mustJSON(t, m)
		}, want: []string{"config.json", "ociVersion", "2.0.0"}},
		{name: "ociVersion banana", config: func(t *testing.T) string {
			m := specJSON(t, nil)
			m["ociVersion"] = "banana"
			return mustJSON(t, m)
		}, want: []string{"config.json", "ociVersion", "banana"}},
		{name: "ociVersion missing", config: func(t *testing.T) string {
			m := specJSON(t, nil)
			delete(m, "ociVersion")
			return mustJSON(t, m)
		}, want: []string{"config.json", "ociVersion"}},
		{name: "missing config.json", bundle: func(t *testing.T, dir string) {
			os.Remove(filepath.Join(dir, "config.json"))
		}, want: []string{"config.json", "does not exist"}},
		{name: "missing rootfs", bundle: func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "rootfs")); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"config.json", "root.path"}},
		{name: "rootfs is a file", bundle: func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "rootfs")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "rootfs"), []byte("not a dir"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"config.json", "root.path", "not a directory"}},
		{name: "no process", config: func(t *testing.T) string {
			m := specJSON(t, nil)
			delete(m, "process")
			return mustJSON(t, m)
		}, want: []string{"config.json", "process"}},
		{name: "unknown capability", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_FOO")
			}))
		}, want: []string{"config.json", "process.capabilities.bounding", "CAP_FOO"}},
		{name: "unknown namespace type", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
			}))
		}, want: []string{"config.json", "linux.namespaces", "bogus"}},
		{name: "duplicate namespace", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
			}))
		}, want: []string{"config.json", "linux.namespaces", "network"}},
		{name: "hook with a relative path", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "bin/true"}}}
			}))
		}, want: []string{"config.json", "hooks.createRuntime[0].path", "bin/true"}},
		{name: "uid mapping of size 0", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				userNS(s)
				s.Linux.UIDMappings[0].Size = 0
			}))
		}, want: []string{"config.json", "linux.uidMappings[0]", "size"}},
		{name: "non-namespaced sysctl", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"kernel.core_pattern": "|/tmp/pwn"}
			}))
		}, want: []string{"config.json", "linux.sysctl", "kernel.core_pattern"}},
		// An isolation this runtime does not know must be refused, not
		// run with namespaces alone.
		{name: "unknown isolation", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Annotations = map[string]string{"run.bulwark.isolation": "vm-fast"}
			}))
		}, want: []string{"config.json", "annotations.run.bulwark.isolation", "vm-fast", "want namespace, vm or vm-strict"}},
		{name: "VM with a memory limit QEMU and the guest cannot fit in", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Annotations = map[string]string{"run.bulwark.isolation": "vm"}
				if s.Linux.Resources == nil {
					s.Linux.Resources = &specs.LinuxResources{}
				}
				limit := int64(64 << 20)
				s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
			}))
		}, want: []string{"config.json", "linux.resources.memory.limit", "64 MiB is too little for a VM"}},
		// QEMU runs as the container's root: a user namespace without
		// one has no uid for it.
		{name: "VM with a user namespace that does not map root", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Annotations = map[string]string{"run.bulwark.isolation": "vm"}
				userNS(s)
				s.Linux.UIDMappings[0].ContainerID = 1
				s.Linux.GIDMappings[0].ContainerID = 1
			}))
		}, want: []string{"config.json", "linux.uidMappings", "needs container uid and gid 0 mapped"}},
		// The two below fail once the init runs: it starts on the rootfs
		// while the runtime still writes its cgroups, so a refusal on
		// either side must still be reported as itself and undo the other.
		{name: "a mount the kernel refuses, before the cgroup mount", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				s.Mounts = append([]specs.Mount{{Destination: "/mnt", Type: "nosuchfs", Source: "x"}}, s.Mounts...)
			}))
		}, want: []string{"mounts[0]", "nosuchfs", "/mnt", "no such device"}},
		{name: "a cpuset the kernel refuses, while the init prepares the rootfs", config: func(t *testing.T) string {
			return mustJSON(t, specJSON(t, func(s *specs.Spec) {
				if s.Linux.Resources == nil {
					s.Linux.Resources = &specs.LinuxResources{}
				}
				s.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "8191"}
			}))
		}, want: []string{"cgroup", "cpuset.cpus", "8191"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			id := e.id()
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
			if tc.config != nil {
				writeRaw(t, bundle, tc.config(t))
			}
			if tc.bundle != nil {
				tc.bundle(t, bundle)
			}
			before := snapHost(t)
			r := e.bw("create", "-b", bundle, id)
			if r.code == 0 {
				t.Fatalf("create succeeded: %v", r)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr does not name %q: %q", w, r.stderr)
				}
			}
			if ents := rootEntries(e.root); len(ents) != 0 {
				t.Errorf("state root not empty: %v", ents)
			}
			assertClean(t, e.root, id, bundle, before)
		})
	}
}

// Unknown properties MUST be ignored (runtime-spec config.md), but a user
// who misspelt one needs to hear that it did nothing: the container runs and
// stderr names each ignored field.
func TestUnknownConfigFieldsWarnAndStillRun(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, nil)
	m := specJSON(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "echo ran"} })
	m["bogusTopLevel"] = 1
	m["process"].(map[string]any)["noNewPrivilege"] = true
	m["linux"].(map[string]any)["futureThing"] = map[string]any{"x": 1}
	writeRaw(t, bundle, mustJSON(t, m))
	id := e.id()
	before := snapHost(t)
	r := e.bw("run", "-b", bundle, id)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "ran" {
		t.Fatalf("a config with unknown fields must still run: %v", r)
	}
	for _, f := range []string{"bogusTopLevel", "process.noNewPrivilege", "linux.futureThing"} {
		if !strings.Contains(r.stderr, f) {
			t.Errorf("no warning naming %q: %q", f, r.stderr)
		}
	}
	assertClean(t, e.root, id, bundle, before)
}

// A mount destination that is not absolute is accepted with a warning, as
// runc does (it resolves it against the container's /).
func TestRelativeMountDestinationWarns(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "test -d /relmnt && grep -q ' /relmnt ' /proc/mounts && echo mounted"}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "relmnt", Type: "tmpfs", Source: "tmpfs"})
	})
	id := e.id()
	before := snapHost(t)
	r := e.bw("run", "-b", bundle, id)
	if !strings.Contains(r.stderr, "mounts[") || !strings.Contains(r.stderr, "relmnt") {
		t.Errorf("no warning naming the relative destination: %v", r)
	}
	if r.code != 0 || strings.TrimSpace(r.stdout) != "mounted" {
		t.Errorf("relative destination not mounted at /relmnt: %v", r)
	}
	assertClean(t, e.root, id, bundle, before)
}

func TestInvalidContainerIDsAreRefused(t *testing.T) {
	for _, id := range []string{
		"a/b", "../escape", "..", ".", "", strings.Repeat("x", 300),
		"sp ace", "semi;colon", "star*", "dollar$x", "new\nline", "ümlaut", "tab\tid",
	} {
		t.Run(strconv.Quote(id), func(t *testing.T) {
			e := newEnv(t)
			bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
			before := snapHost(t)
			r := e.bw("create", "-b", bundle, id)
			if r.code == 0 {
				t.Fatalf("create %q succeeded: %v", id, r)
			}
			if !strings.Contains(r.stderr, "container ID") {
				t.Errorf("stderr does not explain the id: %q", r.stderr)
			}
			if ents := rootEntries(e.root); len(ents) != 0 {
				t.Errorf("state root not empty: %v", ents)
			}
			// "../escape" must not have made a directory beside the root.
			if _, err := os.Lstat(filepath.Join(filepath.Dir(e.root), "escape")); err == nil {
				t.Errorf("id %q created %s", id, filepath.Join(filepath.Dir(e.root), "escape"))
			}
			assertClean(t, e.root, id, bundle, before)
		})
	}
}

func TestDuplicateIDFailsAndLeavesTheFirstContainerWorking(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "100"} })
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	st1 := e.state(id)
	other := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
	r := e.bw("create", "-b", other, id)
	if r.code == 0 || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, id) {
		t.Fatalf("second create with id %s: %v", id, r)
	}
	st2 := e.state(id)
	for _, k := range []string{"pid", "status", "bundle", "created"} {
		if st1[k] != st2[k] {
			t.Errorf("state.%s changed by the failed create: %v -> %v", k, st1[k], st2[k])
		}
	}
	e.mustOK("start", id)
	if s := e.state(id)["status"]; s != "running" {
		t.Fatalf("first container after start: %v", s)
	}
	before := snapHost(t)
	e.mustOK("delete", "--force", id)
	assertClean(t, e.root, id, bundle, before)
	assertClean(t, e.root, id, other, before)
}

// delete without --force only removes stopped containers; a created one has
// a live init and must be left exactly as it was.
func TestDeleteOfACreatedContainerNeedsForce(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "echo started"} })
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	st1 := e.state(id)
	r := e.bw("delete", id)
	if r.code == 0 || !strings.Contains(r.stderr, id) || !strings.Contains(r.stderr, "--force") {
		t.Fatalf("delete of a created container without --force: %v", r)
	}
	st2 := e.state(id)
	if st2["status"] != "created" || st1["pid"] != st2["pid"] {
		t.Fatalf("container changed by the refused delete: %v -> %v", st1, st2)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(int(st2["pid"].(float64)))); err != nil {
		t.Fatalf("init gone after the refused delete: %v", err)
	}
	before := snapHost(t)
	e.mustOK("delete", "--force", id)
	assertClean(t, e.root, id, bundle, before)
}

func TestCommandsOnAMissingContainerFailNamingTheID(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	for _, args := range [][]string{
		{"start", id}, {"state", id}, {"kill", id}, {"kill", id, "KILL"}, {"kill", "--all", id, "KILL"},
		{"delete", id}, {"exec", id, "true"}, {"pause", id}, {"resume", id}, {"ps", id},
	} {
		t.Run(args[0], func(t *testing.T) {
			before := snapHost(t)
			r := e.bw(args...)
			if r.code == 0 {
				t.Fatalf("%v on a missing container: %v", args, r)
			}
			if !strings.Contains(r.stderr, id) || !strings.Contains(r.stderr, "does not exist") {
				t.Errorf("%v: stderr does not say %s does not exist: %q", args, id, r.stderr)
			}
			if ents := rootEntries(e.root); len(ents) != 0 {
				t.Errorf("%v created state: %v", args, ents)
			}
			assertClean(t, e.root, id, "", before)
		})
	}
}

// runc exits 0 for delete --force of a container that does not exist, and
// engines rely on that to make cleanup idempotent.
func TestForceDeleteOfAMissingContainerSucceeds(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	for _, args := range [][]string{{"delete", "--force", id}, {"delete", "-f", id}} {
		if r := e.bw(args...); r.code != 0 {
			t.Errorf("%v: %v", args, r)
		}
	}
	// An invalid id is still an error: it is not "missing", it is wrong.
	if r := e.bw("delete", "--force", "../x"); r.code == 0 || !strings.Contains(r.stderr, "container ID") {
		t.Errorf("delete --force ../x: %v", r)
	}
}
