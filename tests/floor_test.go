package tests

// Attacks on the hardening floor (--harden / policy.json): each test takes
// an engine-shaped config the floor must make safe and attempts, from
// inside the container, the host compromise the floor exists to prevent.

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/rootfs"
	"github.com/bulwark-sec/bulwark/pkg/userns"
)

// emptyPolicy is a policy file that keeps the host's
// /etc/bulwark/policy.json out of a test.
func emptyPolicy(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "empty.json")
	if err := os.WriteFile(p, []byte(`{}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostUsers keeps a config out of the floor's user namespace, as sharing
// the host's network or PID namespace does.
func hostUsers(s *specs.Spec) {
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[oci.AnnotationAllow] = policy.AllowHostUsers
}

// hardenSh runs script in a container from a bundle changed by mutate,
// under `bulwark --harden`.
func (e *env) hardenSh(mutate func(*specs.Spec), script string) result {
	e.t.Helper()
	bundle := testrootfs.Bundle(e.t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", script}
		if mutate != nil {
			mutate(s)
		}
	})
	return e.bw("--harden", "--policy", emptyPolicy(e.t), "run", "-b", bundle, e.id())
}

// The shocker attack: `docker run --cap-add DAC_READ_SEARCH` gives the
// container CAP_DAC_READ_SEARCH, and dockerd then adds open_by_handle_at to
// the profile it writes. A file handle for inode 2 opens the root directory
// of the filesystem the container's rootfs lives on: the host's disk.
func TestHardenBlocksShockerWithDACReadSearchAndDockersProfile(t *testing.T) {
	docker := dockerDefault(t)
	e := newEnv(t)
	r := e.hardenSh(func(s *specs.Spec) {
		docker(s)
		c := s.Process.Capabilities
		for _, set := range []*[]string{&c.Bounding, &c.Effective, &c.Permitted, &c.Inheritable} {
			*set = append(*set, "CAP_DAC_READ_SEARCH")
		}
		s.Linux.Seccomp.Syscalls = append(s.Linux.Seccomp.Syscalls, specs.LinuxSyscall{
			Names: []string{"open_by_handle_at"}, Action: specs.ActAllow})
	}, `echo capeff=$(grep CapEff /proc/self/status | cut -f2); echo shocker=$(syscall open_by_handle_at)`)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	got := kv(r.stdout)
	if got["shocker"] != "EPERM" {
		t.Errorf("open_by_handle_at of the host filesystem's root = %q, want EPERM\n%s", got["shocker"], r.stdout)
	}
	const capDACReadSearch = 2
	if hasCapBit(t, got["capeff"], capDACReadSearch) {
		t.Errorf("CAP_DAC_READ_SEARCH effective under the floor: CapEff %s", got["capeff"])
	}
}

// A config without linux.readonlyPaths and without a user namespace: a
// writable /proc/sys/kernel/core_pattern is a program run as host root on
// the next crash anywhere on the host. The open for writing proves it and
// writes nothing.
func TestHardenMakesProcSysReadOnlyWhenTheConfigDoesNot(t *testing.T) {
	docker := dockerDefault(t)
	e := newEnv(t)
	r := e.hardenSh(func(s *specs.Spec) {
		docker(s)
		s.Linux.ReadonlyPaths = nil
		s.Linux.MaskedPaths = nil
		// Without the floor's user namespace, as a config sharing the
		// host's network gets: there root owns /proc/sys.
		hostUsers(s)
	}, `for f in /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/sys/vm/drop_caches; do echo $f=$(syscall openw $f); done
		echo kcore=$(syscall read /proc/kcore 16)`)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	got := kv(r.stdout)
	for _, f := range []string{"/proc/sys/kernel/core_pattern", "/proc/sys/vm/drop_caches"} {
		if got[f] != "EROFS" {
			t.Errorf("open %s for writing = %q, want EROFS\n%s", f, got[f], r.stdout)
		}
	}
	// Not every kernel has sysrq; where it has, it must be read-only.
	if v := got["/proc/sysrq-trigger"]; v != "EROFS" && v != "ENOENT" {
		t.Errorf("open /proc/sysrq-trigger for writing = %q, want EROFS", v)
	}
	if v := got["kcore"]; v != "EMPTY" && v != "ENOENT" {
		t.Errorf("/proc/kcore read = %q, want EMPTY (masked)", v)
	}
}

// A config that asks for /sys read-write (sysfs without "ro", or the
// host's /sys bound in): host sysfs attributes change kernel state for the
// whole host. The open for writing proves it and writes nothing.
func TestHardenMountsSysReadOnlyUnlessAnnotated(t *testing.T) {
	const attr = "/sys/kernel/mm/transparent_hugepage/enabled"
	if _, err := os.Stat(attr); err != nil {
		t.Skipf("no %s on this kernel to attack: %v", attr, err)
	}
	docker := dockerDefault(t)
	rw := func(s *specs.Spec) {
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i].Options = []string{"nosuid", "noexec", "nodev", "rw"}
			}
		}
	}
	tests := []struct {
		name   string
		mutate func(*specs.Spec)
		want   string
	}{
		{name: "sysfs rw", mutate: rw, want: "EROFS"},
		{name: "host /sys bound rw", mutate: func(s *specs.Spec) {
			for i, m := range s.Mounts {
				if m.Destination == "/sys" {
					s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rbind", "rw"}}
				}
			}
		}, want: "EROFS"},
		{name: "annotated", mutate: func(s *specs.Spec) {
			rw(s)
			s.Annotations[oci.AnnotationAllow] += "," + policy.AllowSysfsRW
		}, want: "OK"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.hardenSh(func(s *specs.Spec) {
				docker(s)
				// Without the floor's user namespace (host sysfs
				// attributes belong to the host's root, whom container
				// root then is not).
				hostUsers(s)
				tc.mutate(s)
			}, "echo sysfs=$(syscall openw "+attr+"); echo agent=$(syscall openw /sys/fs/cgroup/memory/release_agent)")
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			got := kv(r.stdout)
			if got["sysfs"] != tc.want {
				t.Errorf("open %s for writing = %q, want %q", attr, got["sysfs"], tc.want)
			}
			// Bound from the host, /sys brings the host's cgroup v1
			// hierarchies, whose release_agent runs as host root.
			if tc.name == "host /sys bound rw" && got["agent"] != "EROFS" && got["agent"] != "ENOENT" {
				t.Errorf("open the host's memory cgroup release_agent for writing = %q, want EROFS", got["agent"])
			}
		})
	}
}

// ptyCount is the host's number of allocated ptys.
func ptyCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/kernel/pty/nr")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// One container opening ptys without bound takes every pty of every
// container on the host: devpts instances share the kernel's pty.max. Each
// container's devpts has its own max, so the first stops there (ENOSPC)
// and a second container still gets a pty.
func TestDevptsMaxLimitsPtysPerContainer(t *testing.T) {
	const hold = 8
	e := newEnv(t)
	many := func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 8192, Hard: 8192}}
	}
	before := ptyCount(t)
	done := make(chan result, 1)
	go func() {
		done <- e.runIn(many, "syscall", "ptmxfill", "5000", strconv.Itoa(hold))
	}()
	// Wait until the hog has stopped allocating.
	last, still := -1, 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && still < 4; {
		time.Sleep(250 * time.Millisecond)
		n := ptyCount(t)
		if n == last && n > before {
			still++
		} else {
			still = 0
		}
		last = n
	}
	second := e.runIn(nil, "syscall", "ptmxfill", "1")
	hog := <-done
	if hog.code != 0 || second.code != 0 {
		t.Fatalf("hog: %v\nsecond: %v", hog, second)
	}
	got := kv(hog.stdout)
	stop := strings.TrimSpace(hog.stdout[strings.LastIndex(strings.TrimSpace(hog.stdout), "\n")+1:])
	if got["opened"] != strconv.Itoa(rootfs.DevptsMax) || stop != "ENOSPC" {
		t.Errorf("one container opened %s ptys and stopped with %q, want %d and ENOSPC (the host had %d in use)\n%s",
			got["opened"], stop, rootfs.DevptsMax, before, hog.stdout)
	}
	if o := kv(second.stdout)["opened"]; o != "1" {
		t.Errorf("a second container got %s ptys while the first held its maximum, want 1\n%s", o, second.stdout)
	}
}

// /dev is a tmpfs the container's root could write: a binary dropped there
// runs despite a read-only rootfs and a noexec /tmp. After setup /dev is
// read-only and noexec; what is mounted below it (shm, pts, mqueue, a
// bound termination-log as Kubernetes makes) keeps working.
func TestDevIsReadOnlyAndNoexecAfterSetup(t *testing.T) {
	const script = `
		echo create=$(syscall create /dev/planted)
		cat $(command -v syscall) > /dev/dropped 2>/dev/null; chmod 755 /dev/dropped 2>/dev/null
		echo exec=$(/dev/dropped getppid 2>&1 | tail -n 1)
		echo shm=$(syscall create /dev/shm/scratch)
		echo pts=$(syscall ptmxfill 1 | head -n 1)
		echo mqueue=$(test -d /dev/mqueue && echo present)
		echo null=$(echo x > /dev/null && echo OK)
		echo termlog=$(echo done > /dev/termination-log && echo OK)
		echo opts=$(grep ' /dev ' /proc/self/mountinfo | cut -d' ' -f6)`
	termLog := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(termLog, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	docker := dockerDefault(t)
	engine := func(s *specs.Spec) {
		docker(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/termination-log", Type: "bind", Source: termLog, Options: []string{"rbind", "rw"}})
	}
	tests := []struct {
		name string
		run  func(e *env) result
	}{
		{name: "docker-shaped", run: func(e *env) result { return e.sh(engine, script) }},
		{name: "docker-shaped under --harden", run: func(e *env) result { return e.hardenSh(engine, script) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := tc.run(e)
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			got := kv(r.stdout)
			if got["create"] != "EROFS" {
				t.Errorf("create a file in /dev = %q, want EROFS\n%s", got["create"], r.stdout)
			}
			if got["exec"] == "OK" {
				t.Errorf("a binary copied into /dev ran\n%s", r.stdout)
			}
			if o := "," + got["opts"] + ","; !strings.Contains(o, ",ro,") || !strings.Contains(o, ",noexec,") || !strings.Contains(o, ",nosuid,") {
				t.Errorf("/dev mount options %q, want ro, nosuid and noexec", got["opts"])
			}
			for k, want := range map[string]string{"shm": "OK", "pts": "opened=1", "mqueue": "present", "null": "OK", "termlog": "OK"} {
				if got[k] != want {
					t.Errorf("%s = %q, want %q: a mount below /dev stopped working\n%s", k, got[k], want, r.stdout)
				}
			}
			if b, _ := os.ReadFile(termLog); string(b) != "done\n" {
				t.Errorf("termination-log on the host holds %q, want the container's message", b)
			}
		})
	}
}

// /proc/interrupts is masked, but the same per-cpu interrupt counters (a
// side channel on other containers' and the host's activity: keystrokes,
// network, disk) are in /proc/softirqs and /sys/kernel/irq/*/per_cpu_count.
// /proc/stat's intr line stays: ps and top read /proc/stat (docs/escape.md).
func TestInterruptCountersAreMaskedEverywhereTheyLeak(t *testing.T) {
	if _, err := os.Stat("/proc/softirqs"); err != nil {
		t.Skipf("no /proc/softirqs on this kernel: %v", err)
	}
	const script = `
		echo softirqs=$(cat /proc/softirqs 2>/dev/null | wc -c)
		echo irq=$(cat /sys/kernel/irq/*/per_cpu_count 2>/dev/null | wc -c)
		echo ps=$(ps -o pid,comm | grep -c ps)
		echo stat=$(grep -c '^cpu' /proc/stat)`
	docker := dockerDefault(t)
	tests := []struct {
		name string
		run  func(e *env) result
	}{
		{name: "default", run: func(e *env) result { return e.userRun(nil, nil, userRootfs(t), "sh", "-c", script) }},
		{name: "docker-shaped under --harden", run: func(e *env) result { return e.hardenSh(docker, script) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.run(newEnv(t))
			if r.code != 0 {
				t.Fatalf("run: %v", r)
			}
			got := kv(r.stdout)
			if got["softirqs"] != "0" || got["irq"] != "0" {
				t.Errorf("interrupt counters readable: /proc/softirqs %s bytes, /sys/kernel/irq per_cpu_count %s bytes", got["softirqs"], got["irq"])
			}
			if got["ps"] == "0" || got["stat"] == "0" {
				t.Errorf("ps or /proc/stat broken by the masks: %s", r.stdout)
			}
		})
	}
}

// allowAllBPF is a classic BPF program of one instruction: return
// SECCOMP_RET_ALLOW.
var allowAllBPF = []byte{0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f}

// A user who can write the seccomp cache replaces its entries with an
// allow-all program; the next container must not load it.
func TestSeccompCacheEntryReplacedByAnAllowAllProgramIsNotLoaded(t *testing.T) {
	e := newEnv(t)
	script := "syscall keyctl"
	if r := e.userRun(nil, nil, userRootfs(t), "sh", "-c", script); r.code != 0 || strings.TrimSpace(r.stdout) != "EPERM" {
		t.Fatalf("keyctl under the default profile: %v", r)
	}
	cache := filepath.Join(e.root, "@seccomp-cache")
	ents, err := os.ReadDir(cache)
	if err != nil || len(ents) == 0 {
		t.Fatalf("no seccomp cache entries in %s: %v", cache, err)
	}
	// Rewrite every entry the way the old format checked it: the program's
	// own SHA-256, then the program. The new format's header does not
	// parse this, and one that did would not carry the profile's hash.
	for _, ent := range ents {
		sum := sha256.Sum256(allowAllBPF)
		if err := os.WriteFile(filepath.Join(cache, ent.Name()), append(sum[:], allowAllBPF...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if r := e.userRun(nil, nil, userRootfs(t), "sh", "-c", script); r.code != 0 || strings.TrimSpace(r.stdout) != "EPERM" {
		t.Errorf("keyctl after the cache was poisoned = %q, want EPERM (the default profile, recompiled)\n%v", strings.TrimSpace(r.stdout), r)
	}
}

// --root and the seccomp cache in it are trusted only when nobody but
// root can write them.
func TestUnsafeRootDirectoryIsRefused(t *testing.T) {
	e := newEnv(t)
	if err := os.Chmod(e.root, 0o777); err != nil {
		t.Fatal(err)
	}
	r := e.userRun(nil, nil, userRootfs(t), "true")
	if r.code == 0 || !strings.Contains(r.stderr, e.root) || !strings.Contains(r.stderr, "writable by group or others") {
		t.Fatalf("a world-writable --root was used: %v", r)
	}
	if err := os.Chmod(e.root, 0o700); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(e.root, "@seccomp-cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(cache, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	r = e.userRun(nil, nil, userRootfs(t), "true")
	if r.code == 0 || !strings.Contains(r.stderr, cache) || !strings.Contains(r.stderr, "owned by uid 1000") {
		t.Fatalf("a seccomp cache owned by uid 1000 was used: %v", r)
	}
}

// A bundle that brings its own uid/gid maps can name the exact host range
// the pool gave a live container, and then owns that container's files.
// Under the floor the overlap is refused; without it, it is warned about.
func TestOCIMapsOverlappingALiveContainersRangeAreRefusedUnderTheFloor(t *testing.T) {
	e := newEnv(t)
	idA := e.id()
	done := make(chan result, 1)
	go func() {
		done <- e.bw("run", "--name", idA, userRootfs(t), "--", "sleep", "8")
	}()
	stateA := (&container.Runtime{Root: e.root}).StateDir(idA)
	k := -1
	for deadline := time.Now().Add(20 * time.Second); k < 0 && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		owned, err := userns.Default().Allocated()
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range owned {
			if o == stateA {
				k = i
			}
		}
	}
	if k < 0 {
		t.Fatalf("container A got no pool range: %v", <-done)
	}
	hostID := uint32(userns.DefaultBase) + uint32(k)*userns.DefaultSize
	sameRange := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostID + 100, Size: 1000}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: hostID + 100, Size: 1000}}
	}
	hardened := e.hardenSh(sameRange, "id -u")
	plain := e.sh(sameRange, "id -u")
	a := <-done
	if a.code != 0 {
		t.Fatalf("container A: %v", a)
	}
	if hardened.code == 0 || !strings.Contains(hardened.stderr, stateA) || !strings.Contains(hardened.stderr, "linux.uidMappings") {
		t.Errorf("under --harden a bundle mapping container A's host ids %d.. ran: %v", hostID, hardened)
	}
	if plain.code != 0 || !strings.Contains(plain.stderr, stateA) {
		t.Errorf("without the floor the overlap should run with a warning naming %s: %v", stateA, plain)
	}
}

// Docker's profile allows every ioctl and, on kernels since 4.8, ptrace:
// under the floor a Docker-shaped container still gets Bulwark's denials.
// TIOCSTI (and its 64-bit form, whose upper half the kernel ignores)
// pushes input into a terminal, a shell outside the container when it
// shares one; PTRACE_ATTACH of a sibling of the same uid reads and changes
// its memory, and so does process_vm_writev.
func TestHardenDeniesTIOCSTIAndPtraceUnderDockersProfile(t *testing.T) {
	docker := dockerDefault(t)
	e := newEnv(t)
	r := e.hardenSh(docker, `echo tiocsti=$(syscall tiocsti); echo tiocsti_hi=$(syscall tiocsti 0xffffffff00005412)
echo tioclinux=$(syscall tiocsti TIOCLINUX)
sleep 30 & p=$!; echo ptrace=$(syscall ptrace attach $p); kill $p
echo vmwrite=$(syscall raw 311 $$)
echo ioctl_other=$(syscall ioctl 0x5401)`)
	if r.code != 0 {
		t.Fatalf("run: %v", r)
	}
	got := kv(r.stdout)
	// Docker's default action is EPERM too: the denials are rules with the
	// default action, which the loader must keep beside the ioctl allow.
	for k, want := range map[string]string{"tiocsti": "EPERM", "tiocsti_hi": "EPERM", "tioclinux": "EPERM", "ptrace": "EPERM", "vmwrite": "EPERM"} {
		if got[k] != want {
			t.Errorf("%s = %q under the floor with Docker's profile, want %s\n%s", k, got[k], want, r.stdout)
		}
	}
	// Other ioctls still reach the kernel (ENOTTY on a non-terminal stdin):
	// the denial must not take ioctl away.
	if got["ioctl_other"] == "EPERM" || got["ioctl_other"] == "ENOSYS" || got["ioctl_other"] == "" {
		t.Errorf("ioctl TCGETS = %q under the floor, want it to reach the kernel\n%s", got["ioctl_other"], r.stdout)
	}
}

// hardenDetached starts a sleeping Docker-shaped container (no memory or
// pids limit) under `bulwark --harden` with the policy file policyJSON and
// returns its init's pid.
func (e *env) hardenDetached(policyJSON string) string {
	e.t.Helper()
	p := filepath.Join(e.t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(policyJSON), 0o644); err != nil {
		e.t.Fatal(err)
	}
	bundle := testrootfs.Bundle(e.t, func(s *specs.Spec) {
		s.Process.Args = []string{"sleep", "100"}
		dockerShaped(s)
	})
	pidFile := filepath.Join(e.t.TempDir(), "pid")
	e.mustOK("--harden", "--policy", p, "run", "-d", "-b", bundle, "--pid-file", pidFile, e.id())
	b, err := os.ReadFile(pidFile)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// A config without resource limits (Docker without -m and --pids-limit)
// lets one container take the host's memory and pids. Under the floor it
// gets both limits, read here from the host's cgroup files, and the
// policy file changes or removes them.
func TestHardenLimitsMemoryAndPidsWhereTheConfigHasNone(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "memory")
	testrootfs.RequireCgroupV1Controller(t, "pids")
	for _, tc := range []struct {
		name, policy, memory, pids string
	}{
		{"floor defaults", `{}`, strconv.FormatInt(policy.FloorMemoryLimit, 10), strconv.Itoa(policy.FloorPidsLimit)},
		{"policy.json sets both", `{"memoryLimit": "64m", "pidsLimit": 50}`, "67108864", "50"},
		// The kernel's "no limit" for memory is the largest page-aligned value.
		{"policy.json removes both", `{"memoryLimit": "none", "pidsLimit": -1}`, "9223372036854771712", "max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			pid := e.hardenDetached(tc.policy)
			if got, ok := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); !ok || got != tc.memory {
				t.Errorf("memory.limit_in_bytes = %q (found %v), want %s", got, ok, tc.memory)
			}
			if got, ok := cgroupFile(t, pid, "pids", "pids.max"); !ok || got != tc.pids {
				t.Errorf("pids.max = %q (found %v), want %s", got, ok, tc.pids)
			}
		})
	}
}

// A memory bomb in a Docker-shaped container under the floor's default
// limit is killed by the container's own OOM killer before it takes 2 GiB
// of the host.
func TestHardenOOMKillsAMemoryBomb(t *testing.T) {
	testrootfs.RequireCgroupV1Controller(t, "memory")
	e := newEnv(t)
	r := e.hardenSh(dockerShaped, "exec /usr/local/bin/membomb 2048")
	if r.code != 137 {
		t.Fatalf("membomb of 2048 MiB under the floor: %v, want exit 137 (SIGKILL by the OOM killer)", r)
	}
	n := strings.Count(r.stdout, "allocated ")
	if limit := int(policy.FloorMemoryLimit >> 20); n == 0 || n >= limit {
		t.Fatalf("membomb allocated %d MiB under the floor's %d MiB limit", n, limit)
	}
}
