package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// nsScript prints "KIND=LINK" for each namespace of the container's process.
const nsScript = `for n in pid net ipc uts mnt cgroup user time; do [ -e /proc/self/ns/$n ] && echo $n=$(readlink /proc/self/ns/$n); done`

func TestConfigNamespacesAreCreatedNew(t *testing.T) {
	e := newEnv(t)
	hasTime := true
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		hasTime = false
	}
	for _, tc := range []struct {
		typ  specs.LinuxNamespaceType
		file string
		user bool
	}{
		{specs.PIDNamespace, "pid", false},
		{specs.NetworkNamespace, "net", false},
		{specs.IPCNamespace, "ipc", false},
		{specs.UTSNamespace, "uts", false},
		{specs.MountNamespace, "mnt", false},
		{specs.CgroupNamespace, "cgroup", false},
		{specs.UserNamespace, "user", true},
		{specs.TimeNamespace, "time", false},
	} {
		t.Run(tc.file, func(t *testing.T) {
			if tc.typ == specs.TimeNamespace && !hasTime {
				t.Skip("kernel without CONFIG_TIME_NS: /proc/self/ns/time missing")
			}
			if tc.user {
				testrootfs.RequireUserNS(t)
			}
			got := kv(e.mustSh(func(s *specs.Spec) {
				if tc.user {
					userNS(s)
				}
				if tc.typ == specs.TimeNamespace {
					s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
				}
			}, nsScript))
			// pid and time namespaces apply to children: /proc/self/ns/pid
			// of the payload (a child of the unshare) is the new one.
			host := nsLink(t, "self", tc.file)
			if got[tc.file] == "" || got[tc.file] == host {
				t.Fatalf("%s namespace inside is %q, host's is %q: not a new namespace", tc.file, got[tc.file], host)
			}
		})
	}
}

// A new network namespace holds lo, up, and nothing else, whoever made it:
// the runtime, ahead of the init, for a container without a user namespace
// (pkg/netns), or the init, inside the container's user namespace. Either
// way it is owned by the container's user namespace (the host's when it has
// none), as if the init had made it, and each container has its own.
func TestConfigNewNetworkNamespaceHoldsOnlyLoopbackUp(t *testing.T) {
	e := newEnv(t)
	script := `echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')
ip link show lo | grep -q ',UP' && echo lo=up`
	for _, tc := range []struct {
		name string
		user bool
	}{
		{"made by the runtime (no user namespace)", false},
		{"made by the init (in the container's user namespace)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.user {
				testrootfs.RequireUserNS(t)
			}
			mutate := func(s *specs.Spec) {
				if tc.user {
					userNS(s)
				}
			}
			idA, pidA := e.detached(mutate)
			_, pidB := e.detached(mutate)
			got := kv(e.mustOK("exec", idA, "sh", "-c", script))
			if got["ifaces"] != "lo" || got["lo"] != "up" {
				t.Errorf("interfaces %q, lo %q: want only lo, up", got["ifaces"], got["lo"])
			}
			host := nsLink(t, "self", "net")
			if a, b := nsLink(t, pidA, "net"), nsLink(t, pidB, "net"); a == host || b == host || a == b {
				t.Errorf("network namespaces %q and %q (host %q): want a new one per container", a, b, host)
			}
			nsf, err := os.Open("/proc/" + pidA + "/ns/net")
			if err != nil {
				t.Fatal(err)
			}
			defer nsf.Close()
			ownerFd, err := unix.IoctlRetInt(int(nsf.Fd()), unix.NS_GET_USERNS)
			if err != nil {
				t.Fatalf("NS_GET_USERNS: %v", err)
			}
			defer unix.Close(ownerFd)
			var owner, user unix.Stat_t
			if err := unix.Fstat(ownerFd, &owner); err != nil {
				t.Fatal(err)
			}
			if err := unix.Stat("/proc/"+pidA+"/ns/user", &user); err != nil {
				t.Fatal(err)
			}
			if owner.Ino != user.Ino {
				t.Errorf("the network namespace is owned by user namespace %d, the container's is %d", owner.Ino, user.Ino)
			}
		})
	}
}

func TestConfigNamespaceLeftOutIsTheHosts(t *testing.T) {
	e := newEnv(t)
	got := kv(e.mustSh(func(s *specs.Spec) {
		s.Linux.Namespaces = without(s.Linux.Namespaces, specs.NetworkNamespace)
	}, nsScript))
	if host := nsLink(t, "self", "net"); got["net"] != host {
		t.Fatalf("container without a network namespace entry has net %q, host %q", got["net"], host)
	}
	if got["user"] != nsLink(t, "self", "user") {
		t.Fatalf("no user namespace configured, but the container has its own: %q", got["user"])
	}
}

func TestConfigNamespacesJoinedByPath(t *testing.T) {
	e := newEnv(t)
	pid := holder(t, "--net", "--uts", "--ipc")
	got := kv(e.mustSh(func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			switch ns.Type {
			case specs.NetworkNamespace, specs.UTSNamespace, specs.IPCNamespace:
				s.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/" + map[specs.LinuxNamespaceType]string{
					specs.NetworkNamespace: "net", specs.UTSNamespace: "uts", specs.IPCNamespace: "ipc"}[ns.Type]
			}
		}
	}, nsScript))
	for _, kind := range []string{"net", "uts", "ipc"} {
		want := nsLink(t, pid, kind)
		if got[kind] != want {
			t.Errorf("%s: container is in %q, want the joined %q", kind, got[kind], want)
		}
		if want == nsLink(t, "self", kind) {
			t.Errorf("%s: holder shares the host's namespace; the test proves nothing", kind)
		}
	}
}

func TestConfigNetnsJoinedFromIPNetns(t *testing.T) {
	ip := testrootfs.RequireBinary(t, "ip")
	e := newEnv(t)
	name := e.id()
	if out, err := runHost(ip, "netns", "add", name); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { runHost(ip, "netns", "delete", name) })
	path := "/run/netns/" + name
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	got := kv(e.mustSh(func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = path
			}
		}
	}, nsScript+"; echo lo=$(cat /sys/class/net/lo/ifindex)"))
	if want := "net:[" + strconv.FormatUint(st.Ino, 10) + "]"; got["net"] != want {
		t.Fatalf("container net namespace %q, want %q (%s)", got["net"], want, path)
	}
}

func TestConfigUserNamespaceMapsIDs(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	out := e.mustSh(func(s *specs.Spec) {
		userNS(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: shared, Options: []string{"rbind", "rw"}})
	}, `echo uid_map=$(cat /proc/self/uid_map); echo gid_map=$(cat /proc/self/gid_map); echo id=$(id -u):$(id -g); touch /mnt/f`)
	got := kv(out)
	if f := strings.Fields(got["uid_map"]); strings.Join(f, " ") != "0 200000 65536" {
		t.Errorf("uid_map inside: %q", got["uid_map"])
	}
	if f := strings.Fields(got["gid_map"]); strings.Join(f, " ") != "0 200000 65536" {
		t.Errorf("gid_map inside: %q", got["gid_map"])
	}
	if got["id"] != "0:0" {
		t.Errorf("id inside: %q", got["id"])
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(shared, "f"), &st); err != nil {
		t.Fatalf("file created by the container: %v", err)
	}
	if st.Uid != 200000 || st.Gid != 200000 {
		t.Fatalf("file created by container root is owned by %d:%d on the host, want 200000:200000", st.Uid, st.Gid)
	}
}

func TestConfigCgroupNamespaceShowsRoot(t *testing.T) {
	e := newEnv(t)
	out := e.mustSh(nil, "cat /proc/self/cgroup")
	n := 0
	for _, l := range strings.Split(out, "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		n++
		if f[2] != "/" {
			t.Errorf("cgroup line %q: path is not / inside a cgroup namespace", l)
		}
	}
	if n == 0 {
		t.Fatalf("no cgroup lines: %q", out)
	}
}

// The init makes its cgroup namespace itself (on its main thread, after it
// is placed in its cgroups), so a created container, before start, must
// already show it where engines and exec look: /proc/PID/ns/cgroup.
func TestCreatedContainerIsAlreadyInItsCgroupNamespace(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"true"} })
	id := e.id()
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.mustOK("create", "-b", bundle, "--pid-file", pidFile, id)
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(b))
	if got, host := nsLink(t, pid, "cgroup"), nsLink(t, "self", "cgroup"); got == host {
		t.Fatalf("created container's init %s is in the host's cgroup namespace %q", pid, host)
	}
	out := e.mustOK("exec", id, "cat", "/proc/self/cgroup")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("exec into the created container sees cgroup path %q, want /", l)
		}
	}
}

// An idmapped rootfs normally goes through the init's own new user
// namespace; a container that joins another's user namespace has none to
// lend, and the runtime makes one with the same maps instead. Either way a
// file owned by host root shows as root inside, not as nobody.
func TestIdmappedRootfsOfAContainerJoiningAUserNamespace(t *testing.T) {
	testrootfs.RequireUserNS(t)
	e := newEnv(t)
	_, pidA := e.detached(userNS)
	idmapped := func(s *specs.Spec) {
		userNS(s)
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[oci.AnnotationRootfsOptions] = "idmap"
	}
	for _, tc := range []struct {
		name string
		join bool
	}{{"new user namespace", false}, {"joined user namespace", true}} {
		t.Run(tc.name, func(t *testing.T) {
			got := kv(e.mustSh(func(s *specs.Spec) {
				idmapped(s)
				if tc.join {
					for i, ns := range s.Linux.Namespaces {
						if ns.Type == specs.UserNamespace {
							s.Linux.Namespaces[i].Path = "/proc/" + pidA + "/ns/user"
						}
					}
				}
			}, "echo owner=$(stat -c %u /bin/busybox); echo user=$(readlink /proc/self/ns/user)"))
			if got["owner"] != "0" {
				t.Errorf("/bin/busybox (host root's) is owned by %q inside, want 0 through the idmapped rootfs", got["owner"])
			}
			joined := got["user"] == nsLink(t, pidA, "user")
			if joined != tc.join {
				t.Errorf("container's user namespace %q, the other container's %q: joined %v, want %v", got["user"], nsLink(t, pidA, "user"), joined, tc.join)
			}
		})
	}
}

func TestConfigTimeNamespaceAppliesOffsets(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/time"); err != nil {
		t.Skip("kernel without CONFIG_TIME_NS: /proc/self/ns/time missing")
	}
	e := newEnv(t)
	const offset = 10 * 86400 // ten days: far beyond any scheduling noise
	before := hostUptime(t)
	out := e.mustSh(func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: offset}, "boottime": {Secs: offset}}
	}, "cut -d' ' -f1 /proc/uptime")
	after := hostUptime(t)
	in, err := strconv.ParseFloat(out, 64)
	if err != nil {
		t.Fatalf("uptime inside: %q", out)
	}
	if in < before+offset || in > after+offset+1 {
		t.Fatalf("uptime inside %.2f, host %.2f..%.2f: boottime offset %d not applied", in, before, after, offset)
	}
}

func hostUptime(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], real+"/") {
			out = append(out, f[4])
		}
	}
	return out
}

// Without a mount namespace in the config the container shares the host's
// (runtime-tools linux_ns_itype): its mounts are made in the host's table,
// exec lands in its root, and delete leaves nothing mounted. What would
// change the host's own mounts is refused.
func TestNoMountNamespaceSharesTheHostsAndCleansUp(t *testing.T) {
	e := newEnv(t)
	bundle := testrootfs.Bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		s.Linux.Namespaces = without(s.Linux.Namespaces, specs.MountNamespace)
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Root.Readonly = false
	})
	rootfs := filepath.Join(bundle, "rootfs")
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("inside"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := e.id()
	e.mustOK("create", "-b", bundle, id)
	pid := strconv.Itoa(int(e.state(id)["pid"].(float64)))
	if got, want := nsLink(t, pid, "mnt"), nsLink(t, "self", "mnt"); got != want {
		t.Fatalf("container mount namespace %s, want the host's %s", got, want)
	}
	if ms := mountsUnder(t, rootfs); !contains(ms, filepath.Join(mustReal(t, rootfs), "proc")) {
		t.Fatalf("mounts under the rootfs %v, want its /proc among them", ms)
	}
	e.mustOK("start", id)
	if out := e.mustOK("exec", id, "cat", "/marker"); out != "inside" {
		t.Fatalf("exec sees /marker = %q, want the container's \"inside\"", out)
	}
	e.mustOK("delete", "--force", id)
	if ms := mountsUnder(t, rootfs); len(ms) != 0 {
		t.Fatalf("delete left mounts on the host: %v", ms)
	}

	for field, mutate := range map[string]func(*specs.Spec){
		"linux.maskedPaths": func(s *specs.Spec) {},
		"root.readonly":     func(s *specs.Spec) { s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil },
	} {
		b := testrootfs.Bundle(t, func(s *specs.Spec) {
			s.Linux.Namespaces = without(s.Linux.Namespaces, specs.MountNamespace)
			mutate(s)
		})
		if r := e.bw("create", "-b", b, e.id()); r.code == 0 || !strings.Contains(r.stderr, field) {
			t.Fatalf("create without a mount namespace but with %s: %v", field, r)
		}
		if ms := mountsUnder(t, filepath.Join(b, "rootfs")); len(ms) != 0 {
			t.Fatalf("refused create left mounts: %v", ms)
		}
	}
}

func mustReal(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
