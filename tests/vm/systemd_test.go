package vm

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lib "github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/internal/testrootfs"
)

//go:embed guest/systemd-init.sh
var systemdInit []byte

//go:embed guest/systemd.sh
var systemdChecks []byte

//go:embed guest/bwvm.service
var systemdService []byte

//go:embed guest/bwvm.target
var systemdTarget []byte

// The limits of the systemd driver's bundles, shared with the guest script
// through /vm/expect.env.
const (
	sdMemory   = 64 << 20
	sdPids     = 32
	sdQuota    = 50000
	sdPeriod   = 100000
	sdShares   = 512
	sdOOM      = 32 << 20
	sdUpdMem   = 128 << 20
	sdUpdPids  = 48
	sdDefaultX = 7 // exit status of the default-path container
)

// sdChecks is every check the guest must report as PASS.
var sdChecks = []string{
	"systemd_pid1", "bad_path_names_field",
	"run_detached", "scope_active", "init_in_scope", "init_every_hierarchy_in_scope", "scope_in_slice", "scope_delegated",
	"memory_max_set", "tasks_max_set", "cpu_quota_set", "cpu_weight_set", "device_policy_strict",
	"pause_freezes", "resume_thaws",
	"update_memory_max", "update_tasks_max", "update_keeps_cpu",
	"exec_devices", "ps_lists_exec", "kill_all_reaches_exec", "reload_keeps_limits", "reload_keeps_devices",
	"kill_stops_container", "delete_removes_scope", "delete_force_removes_scope",
	"run_default_path", "init_devices", "run_removes_scope", "oom_exit_137", "oom_leaves_no_failed_scope",
	"no_leftovers",
}

// guestModules are the modules the initramfs loads before systemd can run
// from the host's root: virtio PCI for the 9p device, the 9p transport and
// filesystem, and overlayfs for a writable root. Debian builds all of them
// as modules; their dependencies come from modules.dep.
var guestModules = []string{
	"kernel/drivers/virtio/virtio_pci.ko",
	"kernel/net/9p/9pnet_virtio.ko",
	"kernel/fs/9p/9p.ko",
	"kernel/fs/overlayfs/overlay.ko",
}

// TestSystemdCgroupDriver boots a guest whose PID 1 is the host's own
// systemd, on a pure cgroup v2 hierarchy, and runs bulwark --systemd-cgroup
// there: the scope unit it asks systemd for, the limits as systemd reports
// them, pause/resume, update, kill, delete and an OOM kill. The CI host has
// no systemd as PID 1, so this is the only place the systemd driver runs.
//
// The guest's userland is the host's: QEMU exports / read-only over
// virtio-9p, and the initramfs puts a tmpfs overlay on it (see
// guest/systemd-init.sh). Nothing the guest writes reaches the host.
func TestSystemdCgroupDriver(t *testing.T) {
	qemu, kernel := needVM(t)
	if _, err := os.Stat("/lib/systemd/systemd"); err != nil {
		// Not a skip: scripts/install-vm.sh installs systemd, and the
		// guest runs the host's.
		t.Fatalf("the guest boots the host's systemd: %v (scripts/install-vm.sh installs it)", err)
	}
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	tree := t.TempDir()
	if err := os.Chmod(tree, 0o755); err != nil {
		t.Fatal(err)
	}

	if err := copyModules(kver, guestModules, filepath.Join(tree, "modules")); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(testrootfs.BusyboxPath, filepath.Join(tree, "bin/busybox"), 0o755); err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	write(t, filepath.Join(tree, "init"), systemdInit, 0o755)
	vm := filepath.Join(tree, "vm")
	if err := testrootfs.BuildBulwark(filepath.Join(vm, "bulwark")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(vm, "systemd.sh"), systemdChecks, 0o755)
	write(t, filepath.Join(vm, "units/bwvm.service"), systemdService, 0o644)
	write(t, filepath.Join(vm, "units/bwvm.target"), systemdTarget, 0o644)
	write(t, filepath.Join(vm, "expect.env"), []byte(systemdExpectEnv()), 0o644)
	if err := testrootfs.Build(filepath.Join(vm, "rootfs")); err != nil {
		t.Fatal(err)
	}
	// exec_devices and init_devices run it; the bundles give CAP_MKNOD and
	// allow only mknod ("m") of c 1:1, so the device rules alone decide.
	write(t, filepath.Join(vm, "rootfs/devprobe.sh"), []byte(devProbe), 0o755)
	writeBundles(t, filepath.Join(vm, "bundles"), systemdBundles())
	initrd, bootImage := packForBoot(t, tree, kernel)

	// Both layouts systemd 252 can boot: pure cgroup v2 (the library's
	// UnifiedManager) and hybrid (=0: v1 controllers, with a cgroup2 at
	// /sys/fs/cgroup/unified for systemd's own tracking; LegacyManager).
	// The guest script reads the choice from /proc/cmdline.
	for _, layout := range []struct{ name, unified string }{{"v2", "1"}, {"v1-hybrid", "0"}} {
		t.Run(layout.name, func(t *testing.T) {
			bootSystemd(t, qemu, kernel, bootImage, initrd, layout.unified)
		})
	}
}

// bootSystemd boots the guest once and checks its verdicts.
func bootSystemd(t *testing.T, qemu, kernel, bootImage, initrd, unified string) {
	// systemd.unit=bwvm.target: only the checks, no getty or network.
	// show_status=false and log_level=warning keep systemd's own lines
	// off the console the verdicts travel on (the parser finds a frame
	// anywhere in a line, so an interleaved line costs nothing but noise).
	cmdline := "console=ttyS0 rdinit=/init panic=-1 loglevel=1 " +
		"systemd.unit=bwvm.target systemd.unified_cgroup_hierarchy=" + unified + " " +
		"systemd.show_status=false systemd.log_level=warning systemd.log_target=console"
	// readonly=on: the guest cannot write to the host's files whatever
	// runs in it. multidevs=remap: / spans several host filesystems
	// (/proc, /sys, /dev), whose inode numbers would otherwise collide.
	virtfs := []string{"-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := boot(ctx, qemu, bootImage, initrd, cmdline, virtfs...)
	if res == nil {
		t.Fatal(err)
	}
	t.Logf("guest kernel %s (booted as %s); %d console lines", kernel, bootImage, len(res.console))
	if err != nil || !res.done {
		t.Errorf("boot did not finish (err %v, BWVM DONE seen: %v)", err, res.done)
	}
	assertChecks(t, res, sdChecks)
	checkStats(t, res.data["sd_stats"], sdUpdMem, sdUpdPids)
	if t.Failed() {
		t.Logf("console:\n%s", strings.Join(res.console, "\n"))
	}
}

// copyModules copies the named modules of kernel kver and everything they
// depend on (modules.dep) into dir, and writes dir/order: the file names in
// an order insmod can load them, dependencies first. xz-compressed modules
// (newer Debian kernels) are decompressed, since busybox insmod takes only
// plain ELF.
func copyModules(kver string, want []string, dir string) error {
	base := filepath.Join("/lib/modules", kver)
	f, err := os.Open(filepath.Join(base, "modules.dep"))
	if err != nil {
		return fmt.Errorf("modules of the guest kernel %s (linux-image-amd64 installs them): %w", kver, err)
	}
	defer f.Close()
	deps := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if ok {
			deps[mod] = strings.Fields(rest)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	var order []string
	seen := map[string]bool{}
	var visit func(m string, depth int) error
	visit = func(m string, depth int) error {
		if seen[m] {
			return nil
		}
		d, ok := deps[m]
		if !ok {
			// The same module, compressed.
			if _, xok := deps[m+".xz"]; xok {
				return visit(m+".xz", depth)
			}
			return fmt.Errorf("%s: %s is not in modules.dep", base, m)
		}
		if depth > 32 {
			return fmt.Errorf("%s: dependency loop at %s", base, m)
		}
		seen[m] = true
		// modules.dep lists a module's dependencies each before the
		// ones it needs; visiting recursively puts every one after
		// its own dependencies whatever the listing order.
		for _, x := range d {
			if err := visit(x, depth+1); err != nil {
				return err
			}
		}
		order = append(order, m)
		return nil
	}
	for _, m := range want {
		if err := visit(m, 0); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var names []string
	for _, m := range order {
		b, err := os.ReadFile(filepath.Join(base, m))
		if err != nil {
			return err
		}
		name := filepath.Base(m)
		if strings.HasSuffix(name, ".xz") {
			xz := exec.Command("xz", "-dc")
			xz.Stdin = bytes.NewReader(b)
			if b, err = xz.Output(); err != nil {
				return fmt.Errorf("xz -d %s: %w", m, err)
			}
			name = strings.TrimSuffix(name, ".xz")
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
		names = append(names, name)
	}
	return os.WriteFile(filepath.Join(dir, "order"), []byte(strings.Join(names, "\n")+"\n"), 0o644)
}

func systemdExpectEnv() string {
	// systemd shows CPUQuotaPerSecUSec as a time span: quota/period of
	// each second, 50000/100000 -> 500ms.
	share := time.Duration(sdQuota) * time.Second / time.Duration(sdPeriod)
	vars := []struct {
		k string
		v any
	}{
		{"SD_MEMORY", sdMemory}, {"SD_PIDS", sdPids},
		{"SD_CPU_QUOTA", sdQuota}, {"SD_CPU_PERIOD", sdPeriod},
		{"SD_CPU_QUOTA_PER_SEC", fmt.Sprintf("%dms", share.Milliseconds())},
		{"SD_CPU_SHARES", sdShares}, {"SD_CPU_WEIGHT", lib.ConvertCPUSharesToCgroupV2Value(sdShares)},
		{"UPDATE_MEMORY", sdUpdMem}, {"UPDATE_PIDS", sdUpdPids},
		{"SD_DEFAULT_EXIT", sdDefaultX},
	}
	var b strings.Builder
	for _, kv := range vars {
		fmt.Fprintf(&b, "%s=%v\n", kv.k, kv.v)
	}
	return b.String()
}

// devProbe prints NULL=ok when /dev/null (a runtime default device) works,
// and "not permitted" for opening a c 1:1 node it may create and for creating
// a disk node (b 8:0). The guest compares the three lines.
const devProbe = `echo x >/dev/null && head -c 1 /dev/null && echo NULL=ok
mknod /mnt/bwmem c 1 1 2>/dev/null; echo "OPEN_MEM=$(head -c 1 /mnt/bwmem 2>&1 >/dev/null | grep -o "not permitted")"
rm -f /mnt/bwmem
echo "MKNOD_DISK=$(mknod /mnt/bwdisk b 8 0 2>&1 | grep -o "not permitted")"
`

// nodeTmpfs is where the device probes make their nodes: a tmpfs without
// nodev, since the container's /dev is read-only once set up and the
// rootfs is read-only too. Only the devices cgroup then stands between the
// process and the device.
var nodeTmpfs = specs.Mount{Destination: "/mnt", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "mode=755", "size=64k"}}

// withMknod gives s CAP_MKNOD and allows only mknod of c 1:1 on top of the
// runtime's default devices, with a tmpfs at /mnt to make the nodes on.
func withMknod(s *specs.Spec) *specs.Spec {
	s.Mounts = append(s.Mounts, nodeTmpfs)
	for _, set := range []*[]string{&s.Process.Capabilities.Bounding, &s.Process.Capabilities.Effective, &s.Process.Capabilities.Permitted} {
		*set = append(*set, "CAP_MKNOD")
	}
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](1), Access: "m"})
	return s
}

// systemdBundles are the guest's bundles, all on the read-only /vm/rootfs.
// The cgroupsPath of each names its own scope, so the guest can tell them
// apart in systemctl's output.
func systemdBundles() map[string]*specs.Spec {
	spec := func(path string, args ...string) *specs.Spec {
		s := testrootfs.DefaultSpec()
		s.Root.Path = "/vm/rootfs"
		s.Process.Args = args
		s.Linux.CgroupsPath = path
		return s
	}
	out := map[string]*specs.Spec{}
	limits := func(s *specs.Spec) *specs.Spec {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](sdMemory)}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](sdPids)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{
			Shares: ptr[uint64](sdShares), Quota: ptr[int64](sdQuota), Period: ptr[uint64](sdPeriod),
		}
		return s
	}
	out["sd1"] = withMknod(limits(spec("system.slice:bulwark:sd1", "sleep", "1000")))
	out["sd2"] = limits(spec("system.slice:bulwark:sd2", "sleep", "1000"))
	// Not slice:prefix:name; the driver must refuse it naming the field.
	out["bad"] = spec("bad", "true")
	// The default path, and no cgroup namespace so /proc/self/cgroup
	// shows the real cgroup.
	s := withMknod(spec("", "sh", "-c", fmt.Sprintf("cat /proc/self/cgroup; sh /devprobe.sh; exit %d", sdDefaultX)))
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.CgroupNamespace {
			nss = append(nss, ns)
		}
	}
	s.Linux.Namespaces = nss
	out["default"] = s
	s = spec("system.slice:bulwark:sdoom", "membomb", "1024")
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](sdOOM), Swap: ptr[int64](sdOOM)}
	out["sdoom"] = s
	return out
}
