package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/vmcontainer"
)

// The tests below prove what is around the VM: QEMU as a container's init
// for the person face too, in the container's namespaces (its user
// namespace included) and cgroup, and the rootfs shared with the
// ownership the container's user namespace gives it.

// descendant finds a process named comm* below pid.
func descendant(pid int, comm string) int {
	parent := map[int]int{}
	names := map[int]string{}
	ps, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || closing < open {
			continue
		}
		f := strings.Fields(s[closing+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		me, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		parent[me], _ = strconv.Atoi(f[1])
		names[me] = s[open+1 : closing]
	}
	for p, n := range names {
		if !strings.HasPrefix(n, comm) {
			continue
		}
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				return p
			}
		}
	}
	return 0
}

// lineWith waits for the payload's line holding want and returns it.
func lineWith(t *testing.T, lines <-chan string, want string, wait time.Duration) string {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the payload's stdout closed before %q", want)
			}
			t.Logf("payload: %s", l)
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q from the payload after %v", want, wait)
		}
	}
}

// vmLeftovers adds what a VM container with a user namespace makes
// outside its state directory to leftovers.
func vmLeftovers(t *testing.T) []string {
	out := leftovers(t)
	ds, _ := filepath.Glob("/run/bulwark-floor/vm-*")
	return append(out, ds...)
}

func requireVMClean(t *testing.T, before []string) {
	t.Helper()
	if got := vmLeftovers(t); len(got) > len(before) {
		t.Errorf("left behind: %v (before: %v)", got, before)
	}
}

// nsOf is the namespace link of pid's ns.
func nsOf(pid int, ns string) string {
	l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
	return l
}

// TestIsolationVMPersonRunIsAContainer: `bulwark run --isolation vm` makes
// QEMU a container's init as the OCI face does: seen from the host, QEMU
// is in namespaces of its own (mount, pid, net, ipc, uts and the person
// default's user namespace: a host uid that is not root), in the
// container's memory cgroup whose limit is the default's 512 MiB, without
// CAP_SYS_ADMIN, with no_new_privs and seccomp; the guest's root writes a
// file that appears root-owned in the rootfs (the idmapped share); with
// --net none the guest has no NIC but lo; nothing is left once the run
// ends.
func TestIsolationVMPersonRunIsAContainer(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := vmLeftovers(t)
	cmd := exec.Command(bin, "run", "--isolation", "vm", "--name", "vm-person", "--net", "none", "--writable", rootfs, "--", "sh", "-c",
		`echo "id=$(id -u):$(id -g)"; echo "nics=$(sed -n 's/^ *\([^:]*\):.*/\1/p' /proc/net/dev | tr '\n' ' ')"; echo started; read x; echo from-guest > /written-by-guest-root; echo done`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = errf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	// --net none: the guest has no NIC, only its loopback (and the
	// kernel's own tunnel placeholders, which reach nothing).
	nics := lineWith(t, lines, "nics=", 180*time.Second)
	for _, n := range strings.Fields(strings.TrimPrefix(nics, "nics=")) {
		if n != "lo" && n != "sit0" && n != "tunl0" && n != "ip6tnl0" {
			t.Errorf("the guest has the network device %s under --net none (all: %s)", n, nics)
		}
	}
	waitLine(t, lines, "started", 30*time.Second)

	qemu := descendant(cmd.Process.Pid, "qemu-system")
	if qemu == 0 {
		t.Fatal("no QEMU below bulwark run")
	}
	for _, ns := range []string{"mnt", "pid", "net", "ipc", "uts", "user"} {
		if q, h := nsOf(qemu, ns), nsOf(os.Getpid(), ns); q == "" || q == h {
			t.Errorf("QEMU's %s namespace %q is the host's %q", ns, q, h)
		}
	}
	if uid := strings.Fields(procLine(t, qemu, "status", "Uid:")); len(uid) == 0 || uid[0] == "0" {
		t.Errorf("QEMU runs as host uid %v, want the user namespace's unprivileged root", uid)
	}
	cg := memoryCgroup(t, qemu)
	if cg == memoryCgroup(t, os.Getpid()) {
		t.Errorf("QEMU is in the host's memory cgroup %s", cg)
	}
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")); err == nil {
		if got := strings.TrimSpace(string(b)); got != strconv.Itoa(512<<20) {
			t.Errorf("QEMU's memory cgroup %s has the limit %s, want the default 512 MiB", cg, got)
		}
	} else if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", cg, "memory.max")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(512<<20) {
		t.Errorf("QEMU's cgroup %s: memory limit %q (%v), want 512 MiB", cg, b, err)
	}
	capEff, _ := strconv.ParseUint(procLine(t, qemu, "status", "CapEff:"), 16, 64)
	if capEff&(1<<21) != 0 || procLine(t, qemu, "status", "NoNewPrivs:") != "1" || procLine(t, qemu, "status", "Seccomp:") != "2" {
		t.Errorf("QEMU: CapEff %x, NoNewPrivs %s, Seccomp %s; want no CAP_SYS_ADMIN, 1, 2", capEff,
			procLine(t, qemu, "status", "NoNewPrivs:"), procLine(t, qemu, "status", "Seccomp:"))
	}

	// ls names the payload's command and rootfs, not QEMU's.
	if ls, err := exec.Command(bin, "ls").Output(); err != nil || !strings.Contains(string(ls), rootfs) || strings.Contains(string(ls), "/vm/bulwark") {
		t.Errorf("bulwark ls: %v\n%s\nwant the payload's rootfs %s and command, not QEMU's", err, ls, rootfs)
	}

	_, _ = io.WriteString(stdin, "go\n")
	stdin.Close()
	waitLine(t, lines, "done", 60*time.Second)
	for range lines {
	}
	err = cmd.Wait()
	killed = true
	b, _ := os.ReadFile(errf.Name())
	t.Logf("stderr: %s", b)
	if err != nil {
		t.Fatalf("bulwark run: %v", err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(rootfs, "written-by-guest-root"), &st); err != nil || st.Uid != 0 {
		t.Errorf("the file the guest's root wrote: %v, owner %d; want it in the rootfs owned by root (the idmapped share)", err, st.Uid)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory", cg)); !os.IsNotExist(err) {
		t.Errorf("cgroup %s left behind (%v)", cg, err)
	}
	requireVMClean(t, before)
}

// TestOCIVMUserNamespace: a VM container whose config brings a user
// namespace (container ids 0-65535 as host 300000-365535, the rootfs as
// the image left it) runs; the guest's root is uid 0 in the guest, QEMU
// is host uid 300000, and a file the guest's root writes appears in the
// rootfs owned by 300000, the mapped owner, as in a namespace container.
func TestOCIVMUserNamespace(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	before := vmLeftovers(t)
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", `echo "id=$(id -u):$(id -g)"; echo in-guest > /tmp/written-in-guest; sync; echo started; sleep 600`}
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	})
	// The rootfs stays root's; the guest writes in its sticky /tmp.
	if err := os.Chmod(filepath.Join(bundle, "rootfs", "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	const id = "vm-userns"
	lines := o.createAttached(id, bundle)
	o.ok("start", id)
	waitLine(t, lines, "id=0:0", 180*time.Second)
	waitLine(t, lines, "started", 30*time.Second)
	st := o.state(id)
	qemu := qemuOf(t, o, id)
	if u := strings.Fields(procLine(t, qemu, "status", "Uid:")); len(u) == 0 || u[0] != "300000" {
		t.Errorf("QEMU's host uid %v, want 300000 (the container's root)", u)
	}
	if q, h := nsOf(qemu, "user"), nsOf(os.Getpid(), "user"); q == h || q != nsOf(st.Pid, "user") {
		t.Errorf("QEMU's user namespace %s, want the container's %s (host %s)", q, nsOf(st.Pid, "user"), h)
	}
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(bundle, "rootfs", "tmp", "written-in-guest"), &fst); err != nil || fst.Uid != 300000 || fst.Gid != 300000 {
		t.Errorf("the guest root's file: %v, owner %d:%d; want 300000:300000", err, fst.Uid, fst.Gid)
	}
	// Another local user, who can derive the name of the directory the
	// rootfs is bound in from the id, does not get through it.
	shared := filepath.Join(vmcontainer.UsernsDir((&container.Runtime{Root: o.root}).StateDir(id)), "rootfs", "tmp", "written-in-guest")
	peek := exec.Command("/bin/cat", shared)
	peek.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	if out, err := peek.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("another user read the guest's file through %s: %v %q", shared, err, out)
	}
	cg := memoryCgroup(t, st.Pid)
	o.ok("kill", id, "KILL")
	o.waitStatus(id, specs.StateStopped, 60*time.Second)
	o.ok("delete", id)
	requireGone(t, o.root, id, []int{st.Pid, qemu}, filepath.Join("/sys/fs/cgroup/memory", cg))
	requireVMClean(t, before)
}

// TestOCIVMUnderTheFloor: an engine-shaped VM config (no user namespace)
// under `bulwark --harden`, whose floor adds one: it runs, QEMU is an
// unprivileged host uid in the container's user namespace, and a file
// the guest's root writes on the rootfs is root's on the disk (the floor's
// idmapped rootfs, shared as the container sees it).
func TestOCIVMUnderTheFloor(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	before := vmLeftovers(t)
	bundle := vmBundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", `echo "id=$(id -u)"; echo floor > /written-under-floor; sync; echo started; sleep 600`}
	})
	const id = "vm-floor"
	lines := o.createAttachedWith([]string{"--harden"}, id, bundle)
	o.ok("start", id)
	waitLine(t, lines, "id=0", 180*time.Second)
	waitLine(t, lines, "started", 30*time.Second)
	st := o.state(id)
	qemu := qemuOf(t, o, id)
	p := filepath.Join(bundle, "rootfs", "written-under-floor")
	var fst syscall.Stat_t
	if err := syscall.Stat(p, &fst); err != nil || fst.Uid != 0 {
		t.Errorf("the guest root's file under the floor: %v, owner %d; want root's on the disk", err, fst.Uid)
	}
	if u := strings.Fields(procLine(t, qemu, "status", "Uid:")); len(u) == 0 || u[0] == "0" {
		t.Errorf("QEMU's host uid %v, want the floor's unprivileged range", u)
	}
	if nsOf(qemu, "user") == nsOf(os.Getpid(), "user") {
		t.Errorf("QEMU in the host's user namespace under the floor")
	}
	cg := memoryCgroup(t, st.Pid)
	o.ok("kill", id, "KILL")
	o.waitStatus(id, specs.StateStopped, 60*time.Second)
	o.ok("delete", id)
	requireGone(t, o.root, id, []int{st.Pid, qemu}, filepath.Join("/sys/fs/cgroup/memory", cg))
	requireVMClean(t, before)
}

// TestOCIVMUserNamespaceNothingLeftAfterRuntimeKill: the runtime SIGKILLed
// in the middle of creating a VM container with a user namespace (its
// init in the namespaces, a prestart hook running, the idmapped boot
// files and rootfs made for QEMU's root under /run/bulwark-floor): delete
// leaves no process, state, mount or directory.
func TestOCIVMUserNamespaceNothingLeftAfterRuntimeKill(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	before := vmLeftovers(t)
	marker := filepath.Join(t.TempDir(), "in-hook")
	bundle := vmBundle(t, func(s *specs.Spec) {
		//lint:ignore SA1019 prestart is what engines still use
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `touch "$0"; while [ -e "$0" ]; do sleep 0.1; done`, marker}}}}
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	})
	const id = "vm-userns-killed-create"
	cmd := exec.Command(o.bin, "--root", o.root, "create", "--bundle", bundle, id)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatal("the prestart hook never ran")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := vmLeftovers(t); len(got) <= len(before) {
		t.Errorf("nothing under /run/bulwark-floor while create runs: the test would prove nothing")
	}
	b, _ := os.ReadFile(filepath.Join(o.root, id, "state.json"))
	var raw struct {
		Pid int `json:"pid"`
	}
	_ = json.Unmarshal(b, &raw)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	os.Remove(marker)
	o.ok("delete", "-f", id)
	pids := []int{cmd.Process.Pid}
	if raw.Pid > 0 {
		pids = append(pids, raw.Pid)
	}
	requireGone(t, o.root, id, pids, "")
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), "/run/bulwark-floor/vm-") {
		t.Errorf("a mount under /run/bulwark-floor left behind")
	}
	requireVMClean(t, before)
}

// TestOCIVMUserNamespaceCreateKilledAtAnyPoint: create of a VM container
// with a user namespace SIGKILLed at growing delays (0-440 ms), so that
// the kill lands before, during and after the making of QEMU's root
// under /run/bulwark-floor: delete --force, then a create of the same id
// and its delete, leave nothing. The state records that root within
// microseconds of its making; a kill in between (rare: the log counts
// them) leaves it to the next create of the id, which sweeps it. No VM
// boots: start is never called.
func TestOCIVMUserNamespaceCreateKilledAtAnyPoint(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	before := vmLeftovers(t)
	bundle := vmBundle(t, func(s *specs.Spec) {
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 300000, Size: 65536}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	})
	const id = "vm-userns-killed"
	stale := 0
	for i := 0; i < 12; i++ {
		cmd := exec.Command(o.bin, "--root", o.root, "create", "--bundle", bundle, id)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i*40) * time.Millisecond)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		o.do("", "delete", "--force", id)
		if len(vmLeftovers(t)) > len(before) {
			stale++
		}
	}
	// Those the kill caught between the making and the recording.
	t.Logf("%d of 12 kills left a directory under /run/bulwark-floor for the next create to sweep", stale)
	// Attached: the created init holds a pipe's write end until start.
	o.createAttached(id, bundle)
	o.ok("delete", "--force", id)
	requireGone(t, o.root, id, nil, "")
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), "/run/bulwark-floor/vm-") {
		t.Errorf("a mount under /run/bulwark-floor left behind")
	}
	requireVMClean(t, before)
}

// TestIsolationVMReadOnlyRootfsWithoutMountPoints: the person default's
// read-only root, on a rootfs without the /etc files the run binds in
// (hostname, hosts, resolv.conf): their mount points are made on the host
// before the share turns read-only, as the namespace init makes them, and
// the guest reads the run's files there.
func TestIsolationVMReadOnlyRootfsWithoutMountPoints(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	for _, f := range []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"} {
		if err := os.Remove(filepath.Join(rootfs, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	before := vmLeftovers(t)
	r := runVM(t, bin, nil, "--hostname", "ro-guest", rootfs, "--", "sh", "-c", `echo "hostname-file=$(cat /etc/hostname)"; touch /x 2>/dev/null || echo read-only`)
	if r.code != 0 || !strings.Contains(r.stdout, "hostname-file=ro-guest") || !strings.Contains(r.stdout, "read-only") {
		t.Errorf("exit %d, stdout %q; want 0, the run's /etc/hostname and a read-only root", r.code, r.stdout)
	}
	requireVMClean(t, before)
}

// TestOCIVMGuestConsoleFloodStaysOffTheHostDisk: a guest that owns its
// kernel writes to its serial console without end. The console's bytes
// must not pile up on the host's disk (the run directory is on the state
// root's filesystem, outside any quota or memory limit of the container);
// the host keeps only a bounded tail in memory for its error reports.
func TestOCIVMGuestConsoleFloodStaysOffTheHostDisk(t *testing.T) {
	needVM(t)
	o := ociRuntime{t: t, bin: isolationBinary(t), root: t.TempDir()}
	const flood = 2 << 20
	bundle := vmBundle(t, func(s *specs.Spec) {
		// ttyS0 (4:64) is the guest's console; the payload makes a node
		// for it on a tmpfs of its own, as a guest root can.
		s.Process.Args = []string{"sh", "-c", fmt.Sprintf("mknod /mnt/s c 4 64 && head -c %d /dev/zero > /mnt/s; echo wrote=$?; sleep 600", flood)}
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
		s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_MKNOD")
		s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_MKNOD")
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs"})
	})
	const id = "vm-console-flood"
	lines := o.createAttached(id, bundle)
	o.ok("start", id)
	waitLine(t, lines, "wrote=0", 600*time.Second)
	run := filepath.Join((&container.Runtime{Root: o.root}).StateDir(id), vmcontainer.Dir, "run")
	var total int64
	_ = filepath.Walk(run+"/", func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			total += fi.Size()
		}
		return nil
	})
	if total >= flood/2 {
		t.Errorf("the guest's %d console bytes put %d bytes in the run directory %s on the host's disk", flood, total, run)
	}
	o.ok("kill", id, "KILL")
	o.waitStatus(id, specs.StateStopped, 60*time.Second)
	o.ok("delete", id)
}
