// Package vm boots a QEMU guest to test Bulwark where this host cannot: the
// CI host is cgroup v1 hybrid, so the v2 code paths (eBPF device filter,
// cgroup.freeze, cgroup.kill, memory.events, the cgroup2 mount of a
// container, linux.resources.unified) only run for real on a guest booted
// with cgroup v2 alone. See docs/cgroupv2.md.
package vm

import (
	_ "embed"
	"encoding/json"
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
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
)

//go:embed guest/init.sh
var guestInit []byte

//go:embed guest/cgroupv2.sh
var guestChecks []byte

// The limits the bundles set; the guest script gets them through
// /vm/expect.env so both sides compare against the same numbers.
const (
	memoryMax   = 96 << 20
	memoryHigh  = 48 << 20
	pidsMax     = 64
	cpuQuota    = 50000
	cpuPeriod   = 100000
	cpuShares   = 512
	cpusetCPUs  = "0"
	blkioWeight = 500
	hugetlbMax  = 4 << 20

	oomMemory       = 32 << 20
	forkbombPidsMax = 16
	forkbombN       = 500

	updateMemory    = 128 << 20
	updateCPUShares = 2048

	userMemory      = "64m"
	userMemoryBytes = 64 << 20
	userPids        = 20
)

// checks is every line the guest must report as PASS. A check missing from
// the console fails the test as surely as a FAIL line does.
var checks = []string{
	"host_pure_cgroup2", "controllers_enabled",
	"create_limits", "memory_max_set", "pids_max_set", "cpu_max_set", "cpu_weight_set",
	"cpuset_cpus_set", "io_weight_set", "hugetlb_max_set", "unified_memory_high_set",
	"cgroupns_root", "cgroup_mount_own_subtree", "cgroup_mount_readonly", "delete_removes_cgroup",
	"no_cgroupns_bind_own_subtree",
	"oom_run_exit_137", "oom_kill_counted", "forkbomb_stopped_at_limit",
	"device_open_denied", "device_mknod_denied", "device_null_allowed",
	"events_stats_v2", "pause_freezes", "paused_counter_stops", "resume_thaws",
	"update_memory_max", "update_cpu_weight", "kill_all_uses_cgroup_kill", "delete_after_kill_removes_cgroup",
	"user_face_limits", "user_face_oom_exit_137",
	"rootless_undelegated_says_so", "rootless_delegated_limits", "rootless_forkbomb_stopped_at_limit", "rootless_cgroups_removed",
	"no_leftovers",
}

// TestCgroupV2HostEnforcesContainerLimits boots one guest whose only cgroup
// hierarchy is cgroup2 and runs bulwark there (both the OCI face and the
// user face), then fails on every check the guest reports as failed or does
// not report at all. One boot runs the whole batch: 18-22 s of QEMU CPU
// (the log says where it went: booting, copying, the checks).
func TestCgroupV2HostEnforcesContainerLimits(t *testing.T) {
	qemu, kernel := needVM(t)
	tree := t.TempDir()
	// The container rootfs is reached by unprivileged ids (the user face
	// maps root to 100000+), so the tree must be traversable.
	if err := os.Chmod(tree, 0o755); err != nil {
		t.Fatal(err)
	}

	bin := filepath.Join(t.TempDir(), "bulwark")
	if err := testrootfs.BuildBulwark(bin); err != nil {
		t.Fatal(err)
	}
	// Statically linked: the binary alone runs in the guest.
	if err := copyFile(bin, filepath.Join(tree, "usr/local/bin/bulwark"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(testrootfs.BusyboxPath, filepath.Join(tree, "bin/busybox"), 0o755); err != nil {
		t.Fatalf("busybox-static: %v", err)
	}
	// The rootless checks map a user's subordinate ids through the
	// host's newuidmap and newgidmap (Debian's uidmap), with their
	// libraries; the guest makes them setuid.
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s (apt-get install uidmap): %v", tool, err)
		}
		if err := copyFile(p, filepath.Join(tree, "usr/bin", tool), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := copySharedLibs(p, tree); err != nil {
			t.Fatal(err)
		}
	}
	write(t, filepath.Join(tree, "init"), guestInit, 0o755)
	write(t, filepath.Join(tree, "vm/run.sh"), guestChecks, 0o755)
	write(t, filepath.Join(tree, "vm/expect.env"), []byte(expectEnv()), 0o644)
	if err := testrootfs.Build(filepath.Join(tree, "rootfs")); err != nil {
		t.Fatal(err)
	}
	writeBundles(t, filepath.Join(tree, "bundles"), bundles())
	initrd, bootImage := packForBoot(t, tree, kernel)

	// cgroup_no_v1=all: no v1 hierarchy can be mounted, so whatever works
	// works on cgroup v2 alone. loglevel=1 keeps the OOM killer's reports
	// off the console the results travel on; panic=-1 with -no-reboot turns
	// a guest panic into a QEMU exit instead of a hang until the timeout.
	cmdline := "console=ttyS0 rdinit=/init panic=-1 loglevel=1 cgroup_no_v1=all"
	if st, err := os.Stat(initrd); err == nil {
		t.Logf("initramfs %d MiB", st.Size()>>20)
	}
	res := bootChecked(t, qemu, kernel, bootImage, initrd, cmdline, 4*time.Minute, checks)
	checkStats(t, res.data["events_stats"], memoryMax, pidsMax)
}

// assertChecks fails for every expected check the guest did not pass or
// never reported, and for any check it reported that the test does not know
// (a guest script and its test drifting apart).
func assertChecks(t *testing.T, res *bootResult, want []string) {
	t.Helper()
	for _, c := range want {
		v, ok := res.checks[c]
		switch {
		case !ok:
			t.Errorf("%s: never reported by the guest", c)
		case !strings.HasPrefix(v, "PASS"):
			t.Errorf("%s: %s", c, v)
		default:
			t.Logf("%s: %s (at %v)", c, v, res.reportedAt(c))
		}
	}
	for _, c := range res.order {
		if !contains(want, c) {
			t.Errorf("guest reported %q, which the test does not know: add it to the test's list", c)
		}
	}
}

// checkStats decodes `bulwark events --stats` as the guest printed it and
// checks that the numbers come from the cgroup files: the memory limit and
// pids limit are the ones set (wantMem, wantPids), usage and the current pid
// count are non-zero.
func checkStats(t *testing.T, line string, wantMem uint64, wantPids uint64) {
	t.Helper()
	var ev struct {
		Type string        `json:"type"`
		Data cgroups.Stats `json:"data"`
	}
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		t.Errorf("events --stats: not JSON (%v): %q", err, line)
		return
	}
	s := ev.Data
	if ev.Type != "stats" || s.Memory.Usage.Limit != wantMem || s.Memory.Usage.Usage == 0 ||
		s.Pids.Current == 0 || s.Pids.Limit != wantPids {
		t.Errorf("events --stats: type %q, memory usage %d limit %d (want %d), pids current %d limit %d (want %d)",
			ev.Type, s.Memory.Usage.Usage, s.Memory.Usage.Limit, wantMem, s.Pids.Current, s.Pids.Limit, wantPids)
		return
	}
	t.Logf("events --stats: memory limit %d, usage %d; pids %d of %d", s.Memory.Usage.Limit, s.Memory.Usage.Usage, s.Pids.Current, s.Pids.Limit)
}

func expectEnv() string {
	vars := []struct {
		k string
		v any
	}{
		{"MEMORY_MAX", memoryMax}, {"MEMORY_HIGH", memoryHigh}, {"PIDS_MAX", pidsMax},
		{"CPU_QUOTA", cpuQuota}, {"CPU_PERIOD", cpuPeriod},
		// The shares -> weight conversion is the library's; the check is
		// that Bulwark wrote its result, not a re-derivation of it.
		{"CPU_WEIGHT", lib.ConvertCPUSharesToCgroupV2Value(cpuShares)},
		{"CPUSET_CPUS", cpusetCPUs},
		{"BLKIO_WEIGHT", blkioWeight}, {"IO_WEIGHT", lib.ConvertBlkIOToIOWeightValue(blkioWeight)},
		{"HUGETLB_MAX", hugetlbMax},
		{"FORKBOMB_PIDS_MAX", forkbombPidsMax}, {"FORKBOMB_N", forkbombN},
		{"UPDATE_MEMORY", updateMemory},
		{"UPDATE_CPU_SHARES", updateCPUShares}, {"UPDATE_CPU_WEIGHT", lib.ConvertCPUSharesToCgroupV2Value(updateCPUShares)},
		{"USER_MEMORY", userMemory}, {"USER_MEMORY_BYTES", userMemoryBytes}, {"USER_PIDS", userPids},
	}
	var b strings.Builder
	for _, kv := range vars {
		fmt.Fprintf(&b, "%s=%v\n", kv.k, kv.v)
	}
	return b.String()
}

func ptr[T any](v T) *T { return &v }

// bundles are the OCI bundles the guest runs, all on the one read-only
// rootfs at /rootfs (testrootfs.Build: busybox plus tests/payloads).
func bundles() map[string]*specs.Spec {
	spec := func(args ...string) *specs.Spec {
		s := testrootfs.DefaultSpec()
		s.Root.Path = "/rootfs"
		s.Process.Args = args
		return s
	}
	out := map[string]*specs.Spec{}

	// Every limit at once; the process reports what it sees of its own
	// cgroup: /proc/self/cgroup, the cgroup2 mount, memory.max through it,
	// the mount's top level, and a mkdir that must fail.
	s := spec("sh", "-c", `cat /proc/self/cgroup
grep " /sys/fs/cgroup " /proc/self/mountinfo | sed "s/^/MI /"
echo "MAX $(cat /sys/fs/cgroup/memory.max)"
ls /sys/fs/cgroup | sed "s/^/LS /"
echo "MKDIR $(mkdir /sys/fs/cgroup/x 2>&1)"`)
	s.Linux.Resources = &specs.LinuxResources{
		Devices: s.Linux.Resources.Devices,
		Memory:  &specs.LinuxMemory{Limit: ptr[int64](memoryMax), Swap: ptr[int64](memoryMax)},
		Pids:    &specs.LinuxPids{Limit: ptr[int64](pidsMax)},
		CPU: &specs.LinuxCPU{
			Shares: ptr[uint64](cpuShares), Quota: ptr[int64](cpuQuota), Period: ptr[uint64](cpuPeriod),
			Cpus: cpusetCPUs,
		},
		BlockIO:        &specs.LinuxBlockIO{Weight: ptr[uint16](blkioWeight)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: hugetlbMax}},
		Unified:        map[string]string{"memory.high": fmt.Sprint(memoryHigh)},
	}
	out["limits"] = s

	// Without a cgroup namespace the runtime cannot mount a fresh cgroup2
	// rooted at the container's cgroup; it binds that directory instead
	// (a different path through pkg/rootfs). The process must still see
	// only its own subtree, read-only, while /proc/self/cgroup shows the
	// real path.
	s = spec("sh", "-c", `cat /proc/self/cgroup
grep " /sys/fs/cgroup " /proc/self/mountinfo | sed "s/^/MI /"
echo "MAX $(cat /sys/fs/cgroup/memory.max)"
echo "MKDIR $(mkdir /sys/fs/cgroup/x 2>&1)"`)
	var nss []specs.LinuxNamespace
	for _, ns := range s.Linux.Namespaces {
		if ns.Type != specs.CgroupNamespace {
			nss = append(nss, ns)
		}
	}
	s.Linux.Namespaces = nss
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](memoryMax)}
	out["nocgns"] = s

	s = spec("membomb", "1024")
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](oomMemory), Swap: ptr[int64](oomMemory)}
	out["membomb"] = s

	s = spec("forkbomb", fmt.Sprint(forkbombN))
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](forkbombPidsMax)}
	out["forkbomb"] = s

	// CAP_MKNOD so that only the devices cgroup stands between the process
	// and a device: c 1:1 (/dev/mem) may be created but not opened, b 8:0
	// (a disk) not even created, /dev/null (a runtime default) works. The
	// nodes go on a tmpfs that allows them: the container's /dev itself is
	// read-only once set up.
	s = spec("sh", "-c", `mknod /mnt/bwmem c 1 1 && echo "MKNOD_MEM ok"
echo "OPEN_MEM $(head -c 1 /mnt/bwmem 2>&1 >/dev/null)"
echo "MKNOD_DISK $(mknod /mnt/bwdisk b 8 0 2>&1 && echo made)"
echo x >/dev/null && head -c 1 /dev/null && echo "NULL ok"`)
	for _, set := range []*[]string{&s.Process.Capabilities.Bounding, &s.Process.Capabilities.Effective, &s.Process.Capabilities.Permitted} {
		*set = append(*set, "CAP_MKNOD")
	}
	s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](1), Access: "m"})
	s.Mounts = append(s.Mounts, nodeTmpfs)
	out["devices"] = s

	// A counter on stdout: its line count stops while frozen.
	s = spec("sh", "-c", "while :; do echo tick; sleep 0.1; done")
	s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr[int64](memoryMax)}
	s.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr[int64](pidsMax)}
	out["ticker"] = s
	return out
}

// writeBundles writes each spec as dir/NAME/config.json.
func writeBundles(t *testing.T, dir string, bs map[string]*specs.Spec) {
	for name, s := range bs {
		b, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, name, "config.json"), b, 0o644)
	}
}

// packForBoot packs tree into an initramfs, frees the disk the tree took,
// and returns the initramfs and the kernel image to boot (uncompressed
// when it can be: QEMU's TCG boots a vmlinux faster than a bzImage).
func packForBoot(t *testing.T, tree, kernel string) (initrd, bootImage string) {
	initrd = filepath.Join(t.TempDir(), "initrd.cpio")
	if err := writeInitramfs(tree, initrd); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(tree)
	bootImage = kernel
	if vmlinux, err := uncompressedKernel(kernel, t.TempDir()); err != nil {
		t.Logf("booting the bzImage: %v", err)
	} else if vmlinux != "" {
		bootImage = vmlinux
	}
	return initrd, bootImage
}

func write(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
