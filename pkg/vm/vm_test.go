package vm

import (
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/tailbuf"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

func TestModulePathsLoadDependenciesFirst(t *testing.T) {
	dir := t.TempDir()
	dep := `kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/fs/fuse/fuse.ko:
kernel/fs/fuse/virtiofs.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko kernel/fs/fuse/fuse.ko
kernel/net/9p/9pnet.ko:
kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio.ko
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko
kernel/net/core/failover.ko:
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644); err != nil {
		t.Fatal(err)
	}
	// virtio_mmio built in: nothing to load for it.
	if err := os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/virtio/virtio_mmio.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := modulePaths(dir, guestModules, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The NIC's modules apart, after the ones loaded already, without
	// those again.
	net, err := modulePaths(dir, netModules, got)
	if want := []string{"kernel/net/core/failover.ko", "kernel/drivers/net/net_failover.ko", "kernel/drivers/net/virtio_net.ko"}; err != nil || !slices.Equal(net, want) {
		t.Errorf("net modules: %v, %v; want %v", net, err, want)
	}
	pos := map[string]int{}
	for i, p := range got {
		pos[modName(p)] = i
	}
	for _, m := range []string{"virtio_ring", "virtio", "virtio_pci", "virtio_console", "fuse", "virtiofs", "9pnet", "9pnet_virtio", "9p"} {
		if _, ok := pos[m]; !ok {
			t.Errorf("%s not loaded: %v", m, got)
		}
	}
	for _, before := range [][2]string{{"virtio_ring", "virtio"}, {"virtio", "virtio_console"}, {"fuse", "virtiofs"}, {"9pnet", "9p"}} {
		if pos[before[0]] > pos[before[1]] {
			t.Errorf("%s loaded after %s: %v", before[0], before[1], got)
		}
	}
	if len(got) != len(slices.Compact(slices.Clone(got))) {
		t.Errorf("a module listed twice: %v", got)
	}

	// A kernel without the console driver cannot run the agent: say so.
	if err := os.WriteFile(filepath.Join(dir, "modules.dep"), []byte("kernel/fs/fuse/fuse.ko:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := modulePaths(dir, guestModules, nil); err == nil {
		t.Error("no error for a kernel without virtio modules")
	}
}

func TestGuestSizeFollowsTheResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	tests := []struct {
		name  string
		r     *specs.LinuxResources
		mem   int64
		vcpus int
	}{
		{"none", nil, 512, 1},
		{"256m limit", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20)}}, 256, 1},
		{"tiny limit raised to what boots", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(16 << 20)}}, 192, 1},
		{"unlimited", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}, 512, 1},
		{"1.5 cpus", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(150000), Period: u64(100000)}}, 512, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{Linux: &specs.Linux{Resources: tc.r}}
			if got := memoryMiB(s); got != tc.mem {
				t.Errorf("memory %d MiB, want %d", got, tc.mem)
			}
			if got := vcpus(s); got != tc.vcpus {
				t.Errorf("vcpus %d, want %d", got, tc.vcpus)
			}
		})
	}
}

// TestDynamicAgentIsRefused: a dynamically linked /init would panic the
// guest kernel; the go test binary itself is one (cgo).
func TestDynamicAgentIsRefused(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	err = checkStatic(self)
	if err == nil {
		t.Skip("this test binary is static; nothing to refuse")
	}
	if !errors.Is(err, ErrDynamic) {
		t.Errorf("checkStatic = %v, want ErrDynamic", err)
	}
	if err := checkStatic("/nonexistent"); err == nil {
		t.Error("no error for a missing agent binary")
	}
}

// TestProbeFallsBackWithAReason: without a usable /dev/kvm the probe says
// TCG and why; the override is honoured. On a host with real KVM the
// probe must have timed guest code.
func TestProbeFallsBackWithAReason(t *testing.T) {
	t.Setenv("BULWARK_VM_ACCEL", "")
	p := Probe()
	if p.Reason == "" {
		t.Errorf("probe %+v gives no reason", p)
	}
	if p.Accel == "kvm" && p.Took == 0 {
		t.Errorf("KVM chosen without timing guest code: %+v", p)
	}
	if _, err := os.Stat("/dev/kvm"); err != nil && p.Accel != "tcg" {
		t.Errorf("no /dev/kvm, yet the probe chose %s", p.Accel)
	}
	if _, err := timeGuest("/nonexistent/kvm"); err == nil {
		t.Error("timeGuest of a missing device did not fail")
	}
	t.Setenv("BULWARK_VM_ACCEL", "tcg")
	if p := Probe(); p.Accel != "tcg" {
		t.Errorf("BULWARK_VM_ACCEL=tcg gave %s", p.Accel)
	}
}

func TestProbeCodeCountsItsLoops(t *testing.T) {
	c := probeCode()
	if c[0] != 0x66 || c[1] != 0xB9 || c[len(c)-1] != 0xF4 {
		t.Fatalf("probe code % x", c)
	}
	if n := uint32(c[2]) | uint32(c[3])<<8 | uint32(c[4])<<16 | uint32(c[5])<<24; n != probeLoops {
		t.Errorf("loop count %d, want %d", n, probeLoops)
	}
}

// TestSweepStaleRemovesDeadRunsOnly: a run whose runtime is gone leaves a
// directory the next run removes; a live run's directory stays.
func TestSweepStaleRemovesDeadRunsOnly(t *testing.T) {
	tmp := t.TempDir()
	dead := filepath.Join(tmp, "bulwark-vm-999999999-1")
	live := filepath.Join(tmp, "bulwark-vm-"+strconv.Itoa(os.Getpid())+"-2")
	other := filepath.Join(tmp, "bulwark-vm-notapid-3")
	for _, d := range []string{dead, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "x"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(tmp)
	for d, want := range map[string]bool{dead: false, live: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", d, err == nil, want)
		}
	}
}

// TestSweepStaleLeavesAnotherUsersPlantsAlone: TMPDIR is shared, and the
// sweep runs as root: a "run directory" another local user made, whose ro
// is a symlink to a mount point (or which is itself a symlink to a
// directory holding one), must not make root detach that mount.
func TestSweepStaleLeavesAnotherUsersPlantsAlone(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting the target tmpfs needs root")
	}
	tmp := t.TempDir()
	target := filepath.Join(t.TempDir(), "mnt")
	for _, m := range []string{target, filepath.Join(target, "ro")} {
		if err := os.Mkdir(m, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", m, "tmpfs", 0, "size=16k"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(m, unix.MNT_DETACH) })
	}
	viaRo := filepath.Join(tmp, "bulwark-vm-999999998-1")
	viaDir := filepath.Join(tmp, "bulwark-vm-999999997-2")
	if err := os.Mkdir(viaRo, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(viaRo, "ro")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, viaDir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{viaRo, filepath.Join(viaRo, "ro"), viaDir} {
		if err := os.Lchown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(tmp)
	for _, m := range []string{target, filepath.Join(target, "ro")} {
		var st, parent unix.Stat_t
		if err := unix.Stat(m, &st); err != nil {
			t.Fatal(err)
		}
		if err := unix.Stat(filepath.Dir(m), &parent); err != nil {
			t.Fatal(err)
		}
		if st.Dev == parent.Dev {
			t.Errorf("the sweep detached the mount at %s through another user's planted directory", m)
		}
	}
}

// TestMinimalKernelIsPreferredAndBootsOnMicrovm: the kernel
// scripts/build-vm-kernel.sh leaves is used when present (unless
// BULWARK_VM_KERNEL names another), and only a kernel whose config builds
// in virtio-mmio with command-line devices is booted on microvm.
func TestMinimalKernelIsPreferredAndBootsOnMicrovm(t *testing.T) {
	full := "\n"
	for _, o := range microvmOptions {
		full += "CONFIG_" + o + "=y\n"
	}
	tests := []struct {
		name, config string
		microvm      bool
	}{
		{"every option built in", full, true},
		{"no config", "", false},
		{"command-line devices missing", strings.Replace(full, "CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES=y", "# CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES is not set", 1), false},
		{"virtio-mmio as a module", strings.Replace(full, "CONFIG_VIRTIO_MMIO=y", "CONFIG_VIRTIO_MMIO=m", 1), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			k := filepath.Join(dir, "vmlinux")
			if err := os.WriteFile(k, []byte("\x7fELF"), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, "config"), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			old := MinimalKernel
			MinimalKernel = k
			defer func() { MinimalKernel = old }()
			t.Setenv(EnvKernel, "")
			got, err := FindKernel()
			if err != nil || got.Path != k {
				t.Fatalf("FindKernel = %+v, %v; want the minimal kernel %s", got, err, k)
			}
			if got.Microvm != tc.microvm || got.Version != "" {
				t.Errorf("kernel %+v: want Microvm %v and no module version", got, tc.microvm)
			}
			other := filepath.Join(t.TempDir(), "vmlinuz-9.9")
			if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Setenv(EnvKernel, other)
			if got, err := FindKernel(); err != nil || got.Path != other {
				t.Errorf("with %s set: FindKernel = %+v, %v; want %s", EnvKernel, got, err, other)
			}
		})
	}
}

// TestInitramfsCacheReusesIdenticalInputs: every build of the binary is a
// new file with the same bytes; the cache must hold one initramfs for
// them, not one per file, and a different binary gets its own.
func TestInitramfsCacheReusesIdenticalInputs(t *testing.T) {
	static := "/bin/busybox"
	if err := checkStatic(static); err != nil {
		t.Skipf("no static binary to stand for the agent: %v", err)
	}
	b, err := os.ReadFile(static)
	if err != nil {
		t.Fatal(err)
	}
	cache, src := t.TempDir(), t.TempDir()
	kernel := filepath.Join(src, "vmlinux")
	if err := os.WriteFile(kernel, []byte("\x7fELF"), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &Kernel{Path: kernel}
	var got []string
	for i, content := range [][]byte{b, b, b, append(slices.Clone(b), 0)} {
		agent := filepath.Join(src, "bulwark-"+strconv.Itoa(i))
		if err := os.WriteFile(agent, content, 0o755); err != nil {
			t.Fatal(err)
		}
		p, err := initramfs(agent, k, cache)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
		// The same file again: found by its inputs' link.
		if again, err := initramfs(agent, k, cache); err != nil || again != p {
			t.Fatalf("second lookup of %s = %s, %v; want %s", agent, again, err, p)
		}
	}
	if got[0] != got[1] || got[1] != got[2] {
		t.Errorf("identical binaries got different initramfs files: %v", got[:3])
	}
	if got[3] == got[0] {
		t.Errorf("a different binary reused %s", got[0])
	}
	cpios, _ := filepath.Glob(filepath.Join(cache, "initramfs-*"))
	if len(cpios) != 2 {
		t.Errorf("cache holds %v, want 2 initramfs files", cpios)
	}
}

// TestInitramfsPruneBoundsAgeAndSize: unused files older than the age go,
// then the least recently used until the rest fit; the one in use stays
// whatever its size, and links to removed files go with them.
func TestInitramfsPruneBoundsAgeAndSize(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	files := []struct {
		name string
		used time.Duration // ago
		size int
		want bool
	}{
		{"initramfs--stale.cpio", 3 * time.Hour, 10, false},
		{"initramfs--old.cpio", 30 * time.Minute, 40, false},
		{"initramfs--recent.cpio", 10 * time.Minute, 40, true},
		{"initramfs--newest.cpio", time.Minute, 40, true},
		{"initramfs--keep.cpio", 2 * time.Hour, 50, true},
		{"vmlinux-6.1-abc", 5 * time.Hour, 100, true}, // not an initramfs
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, make([]byte, f.size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-f.used), now.Add(-f.used)); err != nil {
			t.Fatal(err)
		}
	}
	for id, target := range map[string]string{"id-a": "initramfs--old.cpio", "id-b": "initramfs--newest.cpio"} {
		if err := os.Symlink(target, filepath.Join(dir, id)); err != nil {
			t.Fatal(err)
		}
	}
	pruneInitramfs(dir, filepath.Join(dir, "initramfs--keep.cpio"), time.Hour, 130)
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(dir, f.name)); (err == nil) != f.want {
			t.Errorf("%s: exists=%v, want %v", f.name, err == nil, f.want)
		}
	}
	for id, want := range map[string]bool{"id-a": false, "id-b": true} {
		if _, err := os.Lstat(filepath.Join(dir, id)); (err == nil) != want {
			t.Errorf("link %s: exists=%v, want %v", id, err == nil, want)
		}
	}
}

// TestInitramfsLinksAreBounded: each build of the binary makes an id-*
// link to a file that may stay in use for long; only the newest links
// stay, and the one just made whatever its age. Cache files and anything
// that is not a link are not the links' prune's to remove.
func TestInitramfsLinksAreBounded(t *testing.T) {
	for _, c := range []struct {
		name  string
		n     int
		links []string // oldest first; keep is "id-keep", made first
		want  []string
	}{
		{"under the bound", 4, []string{"id-keep", "id-a", "id-b"}, []string{"id-keep", "id-a", "id-b"}},
		{"at the bound", 3, []string{"id-keep", "id-a", "id-b"}, []string{"id-keep", "id-a", "id-b"}},
		{"the oldest go, keep stays", 3, []string{"id-keep", "id-a", "id-b", "id-c", "id-d"}, []string{"id-keep", "id-c", "id-d"}},
		{"a bound of one keeps keep alone", 1, []string{"id-keep", "id-a", "id-b"}, []string{"id-keep"}},
		{"a bound of zero still keeps keep", 0, []string{"id-keep", "id-a"}, []string{"id-keep"}},
		{"a stale temp link counts as a link", 2, []string{"id-keep", "id-x.tmp-1", "id-a"}, []string{"id-keep", "id-a"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			const target = "initramfs--x.cpio"
			others := []string{target, "id-not-a-link", "vmlinux-6.1-abc"}
			for _, f := range others {
				if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			made := time.Now().Add(-time.Hour)
			for i, l := range c.links {
				p := filepath.Join(dir, l)
				if err := os.Symlink(target, p); err != nil {
					t.Fatal(err)
				}
				ts := []unix.Timespec{unix.NsecToTimespec(made.Add(time.Duration(i) * time.Minute).UnixNano())}
				ts = append(ts, ts[0])
				if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					t.Fatal(err)
				}
			}
			pruneLinks(dir, filepath.Join(dir, "id-keep"), c.n)
			for _, l := range c.links {
				_, err := os.Lstat(filepath.Join(dir, l))
				if want := slices.Contains(c.want, l); (err == nil) != want {
					t.Errorf("link %s: exists=%v, want %v", l, err == nil, want)
				}
			}
			for _, f := range others {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("%s: %v; only links are pruned here", f, err)
				}
			}
		})
	}
}

// TestExitReportSurvivesQEMUEndingFirst: the agent reports the payload's
// status and powers the guest off; on a loaded host QEMU can be gone
// before the host has read the report. The report is in the port's
// buffer then, and must be read, not lost with an error.
func TestExitReportSurvivesQEMUEndingFirst(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "agent"), os.NewFile(uintptr(fds[1]), "agent-qemu")
	var frames bytes.Buffer
	w := vmproto.NewConn(nil, &frames)
	_ = w.Write(vmproto.KindMark, vmproto.Mark("exited", time.Second))
	_ = w.Write(vmproto.KindExit, vmproto.ExitStatus(7))
	o := &Options{Spec: &specs.Spec{Process: &specs.Process{}}, t0: time.Now()}
	v := &machine{o: o, qdone: make(chan struct{}), sock: ours, conn: vmproto.NewConn(ours, ours), dir: t.TempDir(), keepDir: true}
	// A stand-in for QEMU: writes the guest's last frames and ends.
	cmd := exec.Command("/bin/sh", "-c", `cat >&3`)
	cmd.Stdin = bytes.NewReader(frames.Bytes())
	if err := v.startQEMU(cmd, theirs); err != nil {
		t.Fatal(err)
	}
	theirs.Close()
	defer v.stop()
	select {
	case <-v.qdone:
	case <-time.After(10 * time.Second):
		t.Fatal("the stand-in did not end")
	}
	code, err := v.wait()
	if err != nil || code != 7 {
		t.Errorf("wait after QEMU ended = %d, %v; want the reported 7", code, err)
	}
}

// TestLoadableAgentRunsWithoutItsSections: the initramfs's /init is the
// binary without section headers, DWARF and symbols; it must be smaller
// and still run (here, natively: the test binary is one such ELF).
func TestLoadableAgentRunsWithoutItsSections(t *testing.T) {
	static := "/bin/busybox"
	if err := checkStatic(static); err != nil {
		t.Skipf("no static binary to cut: %v", err)
	}
	for _, bin := range []string{static, "/proc/self/exe"} {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		cut := loadable(b)
		if len(cut) > len(b) {
			t.Fatalf("%s: %d bytes cut to %d", bin, len(b), len(cut))
		}
		t.Logf("%s: %d bytes, loadable part %d", bin, len(b), len(cut))
		f, err := elf.NewFile(bytes.NewReader(cut))
		if err != nil {
			t.Fatalf("%s: the cut binary is no ELF: %v", bin, err)
		}
		if len(f.Sections) != 0 && len(cut) < len(b) {
			t.Errorf("%s: %d sections left", bin, len(f.Sections))
		}
		if bin != static {
			continue
		}
		p := filepath.Join(t.TempDir(), "busybox")
		if err := os.WriteFile(p, cut, 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(p, "echo", "cut-runs").Output()
		if err != nil || strings.TrimSpace(string(out)) != "cut-runs" {
			t.Errorf("the cut busybox: %q, %v", out, err)
		}
	}
	if got := loadable([]byte("not an ELF")); string(got) != "not an ELF" {
		t.Errorf("a non-ELF came back as %q", got)
	}
}

// TestKernelThatIsNotXzBootsAsFound: a PVH bzImage whose bytes hold xz's
// magic by chance (an LZ4 kernel) is booted as found, not refused.
func TestKernelThatIsNotXzBootsAsFound(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz")
	}
	dir := t.TempDir()
	k := filepath.Join(dir, "vmlinuz-9.9-lz4")
	img := append([]byte("MZ not an ELF, some setup code "), xzMagic...)
	img = append(img, []byte("then LZ4 bytes, not an xz stream")...)
	if err := os.WriteFile(k, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config-9.9-lz4"), []byte("\nCONFIG_PVH=y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := bootKernel(newKernel(k), t.TempDir())
	if err != nil || got != k {
		t.Errorf("bootKernel = %q, %v; want %s as found", got, err, k)
	}
}

// TestNinepRootOnlyForAKernelThatMountsIt: the agent boots from its 9p
// root only on a kernel with 9p and virtio-mmio built in, unless
// $BULWARK_VM_ROOT asks for the initramfs; the share is read-only on both
// sides, QEMU's and the guest kernel's.
func TestNinepRootOnlyForAKernelThatMountsIt(t *testing.T) {
	tests := []struct {
		name    string
		microvm bool
		env     string
		want    bool
	}{
		{"minimal kernel", true, "", true},
		{"minimal kernel, initramfs asked for", true, "initramfs", false},
		{"stock kernel", false, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvRoot, tc.env)
			if got := NinepRoot(&Kernel{Microvm: tc.microvm}); got != tc.want {
				t.Errorf("NinepRoot = %v, want %v", got, tc.want)
			}
		})
	}
	args, cmdline := agentRootBoot("/a,b", true)
	joined := strings.Join(args, " ")
	for _, want := range []string{"path=/a,,b,", "readonly=on", "virtio-9p-device", "mount_tag=" + agentTag} {
		if !strings.Contains(joined, want) {
			t.Errorf("QEMU arguments %q lack %q", joined, want)
		}
	}
	for _, want := range []string{" root=" + agentTag + " ", "rootfstype=9p", " ro ", "init=/init"} {
		if !strings.Contains(cmdline+" ", want) {
			t.Errorf("kernel command line %q lacks %q", cmdline, want)
		}
	}
	dir := filepath.Join(t.TempDir(), "agent")
	if err := MakeAgentRoot(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range AgentRootDirs {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || !fi.IsDir() {
			t.Errorf("agent root lacks the mount point %s: %v", d, err)
		}
	}
}

// TestTailKeepsOnlyTheEnd: however much a guest writes to its console,
// the host keeps the last bytes only.
func TestTailKeepsOnlyTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"under the bound", []string{"ab", "cd"}, "abcd"},
		{"spills over", []string{"abc", "def"}, "cdef"},
		{"one write past the bound", []string{"x", "0123456789"}, "6789"},
		{"exactly the bound", []string{"wxyz"}, "wxyz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tl := tailbuf.New(4)
			for _, w := range tc.writes {
				if n, err := tl.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if got := tl.String(); got != tc.want {
				t.Errorf("kept %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHostileGuestFramesEndTheRunBounded: the agent's port is the guest's
// to write, and a guest that owns its kernel writes what it likes. Each
// malformed or hostile sequence ends the run with an error naming the
// frame, and what the error carries from the guest is bounded and holds
// no byte that would drive the person's terminal.
func TestHostileGuestFramesEndTheRunBounded(t *testing.T) {
	huge := bytes.Repeat([]byte("A"), 1<<20)
	defer func(d time.Duration) { BootTimeout = d }(BootTimeout)
	BootTimeout = 3 * time.Second
	for _, tc := range []struct {
		name  string
		write func(w *vmproto.Conn, raw *bytes.Buffer)
		want  string
	}{
		{"a failure that retitles the terminal", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindFail, []byte("\x1b]0;owned\x07\x1b[2Jgone"))
		}, `vm agent: \x1b]0;owned\x07\x1b[2Jgone`},
		{"a failure of a megabyte", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindFail, huge)
		}, "(1048576 bytes in all)"},
		{"a length past MaxFrame", func(_ *vmproto.Conn, raw *bytes.Buffer) {
			raw.Write([]byte{vmproto.KindStdout, 0xff, 0xff, 0xff, 0xff})
		}, "claims 4294967295 bytes"},
		{"ready twice", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindReady, nil)
			_ = w.Write(vmproto.KindReady, nil)
		}, "said ready twice"},
		{"a kind the host never reads", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindConfig, []byte("{}"))
		}, `unexpected frame 'C'`},
		{"a mark that drives the terminal", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindMark, append(make([]byte, 8), "\x1b[2J"...))
		}, "mark name with byte 0x1b"},
		{"an exit status of two bytes", func(w *vmproto.Conn, _ *bytes.Buffer) {
			_ = w.Write(vmproto.KindExit, []byte{0, 1})
		}, "exit status of 2 bytes"},
		// Half a frame, then silence: the boot's deadline ends it.
		{"a frame cut short", func(_ *vmproto.Conn, raw *bytes.Buffer) {
			raw.Write([]byte{vmproto.KindStdout, 0, 0, 1, 0, 'x'})
		}, "no word from the agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			ours, theirs := os.NewFile(uintptr(fds[0]), "agent"), os.NewFile(uintptr(fds[1]), "agent-qemu")
			var frames bytes.Buffer
			tc.write(vmproto.NewConn(nil, &frames), &frames)
			o := &Options{Spec: &specs.Spec{Process: &specs.Process{}}, t0: time.Now()}
			v := &machine{o: o, qdone: make(chan struct{}), sock: ours, conn: vmproto.NewConn(ours, ours), dir: t.TempDir(), keepDir: true}
			// A stand-in for QEMU: passes the guest's frames on and waits
			// for the host to end it, as a guest that never answers.
			cmd := exec.Command("/bin/sh", "-c", `cat >&3; exec sleep 60`)
			cmd.Stdin = bytes.NewReader(frames.Bytes())
			if err := v.startQEMU(cmd, theirs); err != nil {
				t.Fatal(err)
			}
			theirs.Close()
			defer v.stop()
			type res struct {
				code int
				err  error
			}
			done := make(chan res, 1)
			go func() { c, err := v.wait(); done <- res{c, err} }()
			select {
			case r := <-done:
				if r.err == nil {
					t.Fatalf("wait = %d, nil; want an error with %q", r.code, tc.want)
				}
				msg := r.err.Error()
				if !strings.Contains(msg, tc.want) {
					t.Errorf("error %.300q does not say %q", msg, tc.want)
				}
				if strings.ContainsAny(msg, "\x1b\x07") || len(msg) > 8<<10 {
					t.Errorf("the guest's bytes reach the person raw or unbounded: %d bytes, %.200q", len(msg), msg)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the host still waits on a guest that sent a bad frame")
			}
		})
	}
}
