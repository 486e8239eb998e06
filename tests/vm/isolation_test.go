package vm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
	"github.com/bulwark-sec/bulwark/pkg/userns"
	pvm "github.com/bulwark-sec/bulwark/pkg/vm"
)

// The tests below run `bulwark run --isolation vm` as a person would: QEMU
// under TCG here (no real KVM on the CI host), the stock Debian kernel,
// the bulwark binary as the guest's /init.

// isolationBinary builds the static bulwark the guest boots as its agent.
func isolationBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bulwark")
	if err := testrootfs.BuildBulwark(bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

func isolationRootfs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := testrootfs.Build(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

type vmRun struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// runVM runs bulwark under the shared QEMU lock's caller (scripts/test.sh
// holds it for the whole target) and returns what the person sees.
func runVM(t *testing.T, bin string, env []string, args ...string) vmRun {
	t.Helper()
	return runVMStdin(t, bin, "", env, args...)
}

func runVMStdin(t *testing.T, bin, stdin string, env []string, args ...string) vmRun {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"run", "--isolation", "vm"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := vmRun{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	t.Logf("bulwark run %s: exit %d in %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.took, r.stdout, r.stderr)
	return r
}

// leftovers lists QEMU and virtiofsd processes and bulwark-vm-* run
// directories: after a run, there must be none of either.
func leftovers(t *testing.T) []string {
	t.Helper()
	var out []string
	ps, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range ps {
		b, err := os.ReadFile(p)
		c := strings.TrimSpace(string(b))
		if err == nil && (strings.HasPrefix(c, "qemu-system") || c == "virtiofsd") {
			st, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				continue
			}
			out = append(out, p+": "+c)
		}
	}
	ds, _ := filepath.Glob(filepath.Join(os.TempDir(), "bulwark-vm-*"))
	out = append(out, ds...)
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, "bulwark-vm-") {
			out = append(out, "mount: "+l)
		}
	}
	return out
}

func requireClean(t *testing.T, before []string) {
	t.Helper()
	if got := leftovers(t); len(got) > len(before) {
		t.Errorf("left behind after the run: %v (before: %v)", got, before)
	}
}

// TestIsolationVMRunsThePayloadInItsOwnKernel: one boot proves the payload
// reads the person's stdin, runs on the guest's kernel (uname -r differs from the host's), with the
// spec's user, env, cwd, hostname, no capabilities and no_new_privs
// applied by the agent, its stdout and stderr apart, its exit status, and
// a file it writes on the writable rootfs appearing on the host.
func TestIsolationVMRunsThePayloadInItsOwnKernel(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	script := `read line; echo "stdin=$line"; echo "kernel=$(uname -r)"; echo "id=$(id -u):$(id -g)"; echo "cwd=$(pwd)"; echo "env=$GREETING"; ` +
		`echo "host=$(hostname)"; echo "year=$(date -u +%Y)"; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ` +
		`echo from-the-guest > /home/app/written-in-guest; echo to-stderr >&2; exit 7`
	r := runVMStdin(t, bin, "piped-in\n", nil, "--writable", "--user", "1000:1000", "-w", "/tmp", "-e", "GREETING=hi",
		"--hostname", "inside", rootfs, "--", "sh", "-c", script)
	if r.code != 7 {
		t.Fatalf("exit %d, want the payload's 7", r.code)
	}
	var uts syscall.Utsname
	_ = syscall.Uname(&uts)
	hostRelease := strings.TrimRight(string(bytes.TrimRight(int8sToBytes(uts.Release[:]), "\x00")), "\x00")
	for _, want := range []string{"stdin=piped-in", "id=1000:1000", "cwd=/tmp", "env=hi", "host=inside", "CapEff:\t0000000000000000", "NoNewPrivs:\t1", "Seccomp:\t2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q", want)
		}
	}
	if !strings.Contains(r.stdout, "kernel=") || strings.Contains(r.stdout, "kernel="+hostRelease+"\n") {
		t.Errorf("uname -r in the guest is the host's %s (or missing): the payload did not run on its own kernel", hostRelease)
	}
	// The guest's time of day comes from the machine's RTC: without one
	// it was 1970 (and the kernel spun a second looking for it).
	if year := fmt.Sprintf("year=%d\n", time.Now().UTC().Year()); !strings.Contains(r.stdout, year) {
		t.Errorf("the guest's clock is not the host's: stdout lacks %q", year)
	}
	if !strings.Contains(r.stderr, "to-stderr") || strings.Contains(r.stdout, "to-stderr") {
		t.Errorf("stderr not kept apart from stdout")
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "home/app/written-in-guest")); err != nil || string(b) != "from-the-guest\n" {
		t.Errorf("the file the payload wrote in the guest: %q, %v; want it in the rootfs on the host", b, err)
	}
	if !strings.Contains(r.stderr, "TCG") {
		t.Errorf("no TCG warning on a host without real KVM")
	}
	t.Logf("boot-to-exit of the payload: %v (TCG)", r.took)
	requireClean(t, before)
}

func int8sToBytes(a []int8) []byte {
	b := make([]byte, len(a))
	for i, c := range a {
		b[i] = byte(c)
	}
	return b
}

// TestIsolationVMReadOnlyRootfsStaysReadOnly: the default profile's
// read-only root is read-only in the guest, and the host exports it
// read-only too, so nothing the payload does creates a file there.
func TestIsolationVMReadOnlyRootfsStaysReadOnly(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	r := runVM(t, bin, nil, rootfs, "--", "sh", "-c", "echo x > /ro-test; echo rc=$?")
	if !strings.Contains(r.stdout+r.stderr, "Read-only file system") {
		t.Errorf("writing to the root did not fail with EROFS")
	}
	if _, err := os.Stat(filepath.Join(rootfs, "ro-test")); err == nil {
		t.Errorf("the payload created /ro-test on a read-only rootfs")
	}
	requireClean(t, before)
}

// TestIsolationVMNinepRootBootsTheAgentReadOnly: a kernel that mounts a
// 9p root itself (the minimal kernel) boots the agent from a read-only
// share of its binary instead of an initramfs. /bin/true runs and its
// status is the run's; a payload that reaches the agent's root
// (/proc/1/root, with CAP_SYS_PTRACE to be allowed to) can neither
// change the agent binary every VM boots nor create a file beside it:
// EROFS, not a permission error. $BULWARK_VM_ROOT=initramfs still boots
// the same kernel the old way.
func TestIsolationVMNinepRootBootsTheAgentReadOnly(t *testing.T) {
	needVM(t)
	k, err := pvm.FindKernel()
	if err != nil {
		t.Fatal(err)
	}
	if !pvm.NinepRoot(k) {
		t.Skipf("kernel %s boots from an initramfs (9p and virtio-mmio are not built in; scripts/build-vm-kernel.sh makes one that has them)", k.Path)
	}
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	if r := runVM(t, bin, nil, rootfs, "--", "/bin/true"); r.code != 0 {
		t.Fatalf("/bin/true on the 9p root exited %d", r.code)
	}
	if r := runVM(t, bin, nil, rootfs, "--", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exit 3 on the 9p root: the run exited %d", r.code)
	}
	script := `ls /proc/1/root/; echo x >> /proc/1/root/init; echo append=$?; echo x > /proc/1/root/planted; echo create=$?`
	r := runVM(t, bin, nil, "--cap-add", "SYS_PTRACE", rootfs, "--", "sh", "-c", script)
	out := r.stdout + r.stderr
	if !strings.Contains(r.stdout, "init") || !strings.Contains(r.stdout, "rootfs") {
		t.Fatalf("the payload did not reach the agent's root through /proc/1/root (no init, rootfs in its listing)")
	}
	if !strings.Contains(r.stdout, "append=") || !strings.Contains(r.stdout, "create=") || strings.Contains(r.stdout, "append=0") || strings.Contains(r.stdout, "create=0") {
		t.Errorf("a write to the agent's root succeeded in the guest")
	}
	if n := strings.Count(out, "Read-only file system"); n != 2 || strings.Contains(out, "Permission denied") {
		t.Errorf("the agent's root refused %d of 2 writes with EROFS (a permission error is not the wall: the guest's root passes it)", n)
	}
	if r := runVM(t, bin, []string{pvm.EnvRoot + "=initramfs"}, rootfs, "--", "sh", "-c", "exit 4"); r.code != 4 {
		t.Errorf("%s=initramfs: exit %d, want the payload's 4", pvm.EnvRoot, r.code)
	}
	requireClean(t, before)
}

// TestIsolationVMTrueBootToExit measures what a VM costs a person: the
// wall time of `bulwark run --isolation vm ROOTFS -- true`, three times.
// The aim under TCG is 1.5 s; the figure is logged, not asserted,
// because TCG on a shared CI host varies with the load.
func TestIsolationVMTrueBootToExit(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	var took []string
	for i := 0; i < 3; i++ {
		r := runVM(t, bin, nil, rootfs, "--", "true")
		if r.code != 0 {
			t.Fatalf("true exited %d", r.code)
		}
		took = append(took, r.took.Round(time.Millisecond).String())
	}
	t.Logf("boot-to-exit of /bin/true under TCG: %s", strings.Join(took, " "))
}

// TestIsolationVMDebugPrintsTheGuestConsole: BULWARK_VM_DEBUG=1 reaches the
// monitor of `bulwark run --isolation vm` (QEMU as a container's init) and
// the guest's console, verbose kernel included, is printed on stderr, since
// the container's run directory and its console.log go with the container;
// without it nothing of the console is printed.
func TestIsolationVMDebugPrintsTheGuestConsole(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	r := runVM(t, bin, []string{"BULWARK_VM_DEBUG=1"}, rootfs, "--", "sh", "-c", "echo payload-ran")
	if r.code != 0 || !strings.Contains(r.stdout, "payload-ran") {
		t.Fatalf("debug run: exit %d, stdout %q", r.code, r.stdout)
	}
	if !strings.Contains(r.stderr, "vm console: ") || !strings.Contains(r.stderr, "Linux version") {
		t.Errorf("BULWARK_VM_DEBUG=1: no guest console (with the kernel's banner) on stderr")
	}
	if strings.Contains(r.stdout, "vm console: ") {
		t.Errorf("the guest console went to stdout, the payload's")
	}
	r = runVM(t, bin, []string{"BULWARK_VM_DEBUG="}, rootfs, "--", "true")
	if r.code != 0 || strings.Contains(r.stderr, "vm console: ") {
		t.Errorf("without BULWARK_VM_DEBUG: exit %d, console printed: %v", r.code, strings.Contains(r.stderr, "vm console: "))
	}
	requireClean(t, before)
}

// TestIsolationVMRepeatedRunsDoNotGrowTheCache: every build of bulwark is
// a new file; two copies of one binary (as two test runs or two installs
// make) must boot from one cached initramfs, so repeated runs leave the
// boot cache (/var/cache/bulwark/vm) as it was after the first.
func TestIsolationVMRepeatedRunsDoNotGrowTheCache(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	cache := func() (names []string, bytes int64) {
		ms, _ := filepath.Glob("/var/cache/bulwark/vm/initramfs-*")
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil {
				names = append(names, filepath.Base(m))
				bytes += fi.Size()
			}
		}
		return names, bytes
	}
	var after [][]string
	for i := 0; i < 2; i++ {
		copyBin := filepath.Join(t.TempDir(), "bulwark")
		if err := copyFile(bin, copyBin, 0o755); err != nil {
			t.Fatal(err)
		}
		if r := runVM(t, copyBin, nil, rootfs, "--", "true"); r.code != 0 {
			t.Fatalf("run %d: true exited %d", i, r.code)
		}
		names, size := cache()
		t.Logf("after run %d: %d initramfs files, %d MB", i, len(names), size>>20)
		after = append(after, names)
	}
	if len(after[1]) > len(after[0]) {
		t.Errorf("the second copy of the same binary grew the cache: %v, then %v", after[0], after[1])
	}
	// The cache's bound (pkg/vm CacheMaxBytes, 160 MiB) plus the file in use.
	if _, size := cache(); size > 200<<20 {
		t.Errorf("the initramfs cache holds %d MB, past its bound", size>>20)
	}
}

// TestIsolationVMBadInputLeavesNothing: a missing QEMU or kernel is named
// with how to install it, before anything is started.
func TestIsolationVMBadInputLeavesNothing(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	junk := t.TempDir()
	for _, n := range []string{"vmlinuz-0.0-nomodules", "not-a-kernel"} {
		if err := os.WriteFile(filepath.Join(junk, n), bytes.Repeat([]byte("junk"), 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no QEMU", []string{"PATH=/nonexistent"}, "apt-get install qemu-system-x86"},
		{"no kernel", []string{"BULWARK_VM_KERNEL=/nonexistent/vmlinuz"}, "BULWARK_VM_KERNEL"},
		{"a kernel without its modules", []string{"BULWARK_VM_KERNEL=" + filepath.Join(junk, "vmlinuz-0.0-nomodules")}, "linux-image-amd64"},
		{"a kernel that does not boot", []string{"BULWARK_VM_KERNEL=" + filepath.Join(junk, "not-a-kernel")}, "VM ended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runVM(t, bin, tc.env, rootfs, "--", "true")
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q: want a failure naming %q", r.code, r.stderr, tc.want)
			}
			if strings.Contains(tc.name, "no ") && strings.Contains(r.stderr, "TCG") {
				t.Errorf("warned about TCG before saying what is missing: %q", r.stderr)
			}
		})
	}
	r := runVM(t, bin, nil, "--tty", rootfs, "--", "true")
	if r.code == 0 || !strings.Contains(r.stderr, "--tty") {
		t.Errorf("--tty with --isolation vm: exit %d, stderr %q; want a refusal naming --tty", r.code, r.stderr)
	}
	requireClean(t, before)
}

// TestIsolationVMQEMUKilledMidRun: QEMU dying under a running payload is
// an error that says so, and leaves no virtiofsd, run directory or mount.
func TestIsolationVMQEMUKilledMidRun(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	cmd := exec.Command(bin, "run", "--isolation", "vm", rootfs, "--", "sh", "-c", "echo started; sleep 600")
	var out, errb bytes.Buffer
	cmd.Stderr = &errb
	pr, pw, _ := os.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	buf := make([]byte, 64)
	n, _ := pr.Read(buf)
	out.Write(buf[:n])
	if !strings.Contains(out.String(), "started") {
		_ = cmd.Process.Kill()
		t.Fatalf("the payload did not start: %q %s", out.String(), errb.String())
	}
	// QEMU runs below bulwark, as its container's init's child.
	qemu := descendant(cmd.Process.Pid, "qemu-system")
	if qemu == 0 {
		_ = cmd.Process.Kill()
		t.Fatal("no QEMU below bulwark")
	}
	_ = syscall.Kill(qemu, syscall.SIGKILL)
	err := cmd.Wait()
	pr.Close()
	if err == nil || !strings.Contains(errb.String(), "VM ended") {
		t.Errorf("bulwark after QEMU was killed: %v, stderr %q; want an error saying the VM ended", err, errb.String())
	}
	requireClean(t, before)
}

// TestIsolationVMStrictRefusesTCG: where the probe finds no real KVM,
// vm-strict refuses before anything starts, and check and features say
// which accelerator a VM would get.
func TestIsolationVMStrictRefusesTCG(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	feat, err := exec.Command(bin, "features").Output()
	if err != nil {
		t.Fatal(err)
	}
	check, _ := exec.Command(bin, "check").CombinedOutput()
	if !strings.Contains(string(check), "vm.accel: ") || !strings.Contains(string(feat), `"run.bulwark.isolation.accel"`) {
		t.Fatalf("check or features does not report the VM accelerator:\n%s\n%s", check, feat)
	}
	if strings.Contains(string(feat), `"run.bulwark.isolation.accel": "kvm"`) {
		t.Skip("this host has real KVM: vm-strict runs")
	}
	before := leftovers(t)
	cmd := exec.Command(bin, "run", "--isolation", "vm-strict", rootfs, "--", "true")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "vm-strict") || !strings.Contains(string(out), "KVM") {
		t.Errorf("vm-strict without KVM: %v, %s; want a refusal naming vm-strict and KVM", err, out)
	}
	requireClean(t, before)
}

// TestIsolationVMForwardsSignalsToThePayload: SIGTERM to bulwark reaches
// the payload inside the guest, whose handler's status is the run's.
func TestIsolationVMForwardsSignalsToThePayload(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	before := leftovers(t)
	cmd := exec.Command(bin, "run", "--isolation", "vm", rootfs, "--", "sh", "-c",
		`trap "echo got-term; exit 42" TERM; echo started; while :; do sleep 1; done`)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	pr, pw, _ := os.Pipe()
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	buf := make([]byte, 64)
	n, _ := pr.Read(buf)
	if !strings.Contains(string(buf[:n]), "started") {
		_ = cmd.Process.Kill()
		t.Fatalf("the payload did not start: %q %s", buf[:n], errb.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	rest := make([]byte, 256)
	m, _ := pr.Read(rest)
	err := cmd.Wait()
	pr.Close()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 || !strings.Contains(string(rest[:m]), "got-term") {
		t.Errorf("after SIGTERM: %v, stdout %q, stderr %q; want the payload's trap to run and exit 42", err, rest[:m], errb.String())
	}
	requireClean(t, before)
}

// TestIsolationVMRunKilledAtAnyPointLeavesNothingAfterRmF kills `bulwark
// run --isolation vm` at points from its create to a booted guest running
// the payload (a boot takes 1-4 s under TCG), then rm -f: no QEMU,
// virtiofsd, mount, state or user namespace range is left. (Swept every
// 100 ms to 3.9 s once: nothing was left at any point.)
func TestIsolationVMRunKilledAtAnyPointLeavesNothingAfterRmF(t *testing.T) {
	needVM(t)
	bin, rootfs := isolationBinary(t), isolationRootfs(t)
	root := t.TempDir()
	before := leftovers(t)
	for i, delay := range []time.Duration{0, 150, 400, 800, 1300, 2000, 3000} {
		id := fmt.Sprintf("vm-killed-%d", i)
		cmd := exec.Command(bin, "--root", root, "run", "--name", id, "--isolation", "vm", rootfs, "--", "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		out, err := exec.Command(bin, "--root", root, "rm", "-f", id).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "does not exist") {
			t.Errorf("rm -f after SIGKILL at %v ms: %v: %s", delay, err, out)
		}
		// QEMU and virtiofsd end with their container's cgroup: a moment.
		var left []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if left = leftovers(t); len(left) <= len(before) {
				break
			}
		}
		if len(left) > len(before) {
			t.Errorf("after SIGKILL at %v ms and rm -f: %v (before: %v)", delay, left, before)
		}
		if ents, _ := os.ReadDir(root); len(ents) > 0 {
			for _, e := range ents {
				if e.Name() != "@seccomp-cache" {
					t.Errorf("after SIGKILL at %v ms and rm -f: %s left in the state root", delay, e.Name())
				}
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, root) {
				t.Errorf("after SIGKILL at %v ms and rm -f: mount left: %s", delay, l)
			}
		}
		owned, _ := userns.Default().Allocated()
		for k, o := range owned {
			if strings.HasPrefix(o, root+"/") {
				t.Errorf("after SIGKILL at %v ms and rm -f: user namespace range %d still allocated to %s", delay, k, o)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
	}
}
