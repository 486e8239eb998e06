package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	lib "github.com/opencontainers/cgroups"
	devcfg "github.com/opencontainers/cgroups/devices/config"

	// Registers the v1 devices-file writer and the v2 eBPF device filter;
	// without it the library refuses every device rule.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/systemd"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// layout describes the cgroup hierarchies of the host.
type layout struct {
	// v2 is true on a pure cgroup v2 (unified) host.
	v2 bool
	// unifiedRoot is the cgroup2 mount point: /sys/fs/cgroup on v2,
	// /sys/fs/cgroup/unified on a hybrid host, "" when there is none.
	unifiedRoot string
}

const (
	unifiedMountpoint = "/sys/fs/cgroup"
	hybridMountpoint  = "/sys/fs/cgroup/unified"
)

func detectLayout() layout {
	switch {
	case lib.IsCgroup2UnifiedMode():
		return layout{v2: true, unifiedRoot: unifiedMountpoint}
	case lib.IsCgroup2HybridMode():
		return layout{unifiedRoot: hybridMountpoint}
	default:
		return layout{}
	}
}

// Manager manages the cgroup(s) of one container.
type Manager struct {
	mu  sync.Mutex
	cfg Config
	lay layout
	cg  *lib.Cgroup
	lib lib.Manager
	// paths is our own copy: the library deletes entries from its map as
	// Destroy removes them, but Paths must keep answering the same.
	paths map[string]string
	// unifiedDir is the container's directory on the cgroup2 hierarchy
	// (v2, or the unified side of a hybrid host); "" when there is none.
	unifiedDir string
	// cleanupParent is the default parent we chose ("/bulwark"); Destroy
	// removes it from each hierarchy once it is empty.
	cleanupParent string
	// devicesProgrammed tells Set whether a nil device list means "keep
	// the rules already in the kernel" (true) or "deny all" (false).
	devicesProgrammed bool
	// loaded is true for a manager made by Load: its cgroup was created
	// by an earlier command, and Apply adds a process to it (exec).
	loaded bool
}

// New computes the container's cgroup paths from cfg; it changes nothing on
// the filesystem. r is used by Apply for the few limits the library writes
// before the process joins (cpuset, memory); Set must still be called.
func New(cfg Config, r *specs.LinuxResources) (*Manager, error) {
	return newManager(cfg, r, detectLayout(), false)
}

// Load returns a manager for a container created earlier with the same cfg,
// for commands such as kill, pause, update and delete. It succeeds even when
// the cgroup is already gone, so that delete stays idempotent; see Exists.
func Load(cfg Config) (*Manager, error) {
	return newManager(cfg, nil, detectLayout(), true)
}

func newManager(cfg Config, r *specs.LinuxResources, lay layout, loaded bool) (*Manager, error) {
	if cfg.None {
		return &Manager{cfg: cfg, lay: lay, paths: map[string]string{}, loaded: loaded}, nil
	}
	cg, parent, err := cfg.libCgroup()
	if err != nil {
		return nil, err
	}
	cg.Rootless = cfg.Rootless
	conv, err := convertResources(r)
	if err != nil {
		return nil, err
	}
	if conv.res.Unified != nil && !lay.v2 {
		return nil, errUnifiedOnV1()
	}
	// Apply only needs what must be in place before the process joins;
	// hugetlb on a hybrid host and devices are Set's business.
	applyRes := *conv.res
	applyRes.HugetlbLimit = nil
	// Devices stay nil but SkipDevices must stay false: with it the v1
	// library would not even join the devices hierarchy.
	applyRes.Devices = nil
	cg.Resources = &applyRes

	var mgr lib.Manager
	switch {
	case cfg.Systemd:
		if !systemd.IsRunningSystemd() {
			return nil, ErrSystemdUnavailable
		}
		if lay.v2 {
			mgr, err = systemd.NewUnifiedManager(cg, "")
		} else {
			if !loaded {
				cg.SystemdProps = append(cg.SystemdProps, legacyDevicePolicy)
			}
			mgr, err = systemd.NewLegacyManager(cg, nil)
		}
	case lay.v2:
		mgr, err = fs2.NewManager(cg, filepath.Join(lay.unifiedRoot, cg.Path))
	default:
		mgr, err = fs.NewManager(cg, fastV1Paths(cg.Path))
	}
	if err != nil {
		return nil, fmt.Errorf("cgroups: cannot compute cgroup paths for container %q (linux.cgroupsPath %q): %w", cfg.ID, cfg.Path, err)
	}

	m := &Manager{
		cfg:               cfg,
		lay:               lay,
		cg:                cg,
		lib:               mgr,
		paths:             make(map[string]string),
		cleanupParent:     parent,
		devicesProgrammed: loaded,
		loaded:            loaded,
	}
	for k, v := range mgr.GetPaths() {
		m.paths[k] = v
	}
	if lay.unifiedRoot != "" {
		m.unifiedDir = m.paths[""]
	}
	return m, nil
}

// legacyDevicePolicy is started with every v1 (legacy or hybrid) scope.
// systemd creates a scope's cgroup only in the v1 hierarchies of the
// controllers its properties enable, and Delegate=yes does not enable v1
// devices. Without it the library put the init into devices/<scope> by
// hand, systemd (which migrates a scope's processes per v1 controller as it
// realizes them) left it in the parent's devices cgroup once Set enabled the
// controller with DeviceAllow, and the container ran in devices:/system.slice
// with no device rule at all while its exec'd processes were confined (found
// by the systemd VM test on the hybrid layout, right after create). With a
// device policy from the start, the scope owns its devices cgroup when the
// init joins; Set replaces the deny-all with the spec's rules before the
// init runs anything.
var legacyDevicePolicy = sdbus.Property{Name: "DevicePolicy", Value: dbus.MakeVariant("strict")}

func errUnifiedOnV1() error {
	// "invalid configuration" is runc's word for it, which scripts match.
	return errors.New("linux.resources.unified: invalid configuration for this host: it sets cgroup v2 files, but this host uses cgroup v1 (or hybrid v1 + v2); remove linux.resources.unified or boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1)")
}

// where names the container's cgroup in error messages.
func (m *Manager) where() string {
	if m.unifiedDir != "" && m.lay.v2 {
		return m.unifiedDir
	}
	if p := m.paths["memory"]; p != "" {
		return p
	}
	for _, p := range m.paths {
		return p
	}
	return fmt.Sprintf("%+v", m.cfg)
}

// Version is 2 on a pure cgroup v2 host and 1 otherwise (hybrid included).
func (m *Manager) Version() int {
	if m.lay.v2 {
		return 2
	}
	return 1
}

// Paths maps controller names to directories (v1) or "" to the unified
// directory (v2; on hybrid hosts "" is the unified side next to the v1 keys).
func (m *Manager) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

// Exists reports whether any of the container's cgroup directories exists.
func (m *Manager) Exists() bool {
	for _, p := range m.paths {
		if lib.PathExists(p) {
			return true
		}
	}
	return false
}

// Apply creates the cgroup(s) and moves pid in (-1 only creates them).
// On failure the caller should call Destroy, which removes what was made.
// On a manager made by Load it adds pid to the existing cgroup (exec).
func (m *Manager) Apply(pid int) error {
	if m.cfg.None {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	// A concurrent Destroy of another container may remove the shared
	// default parent between our mkdir of it and of our own directory.
	for range 3 {
		if err = m.apply(pid); err == nil || m.cleanupParent == "" || !errors.Is(err, os.ErrNotExist) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cgroups: cannot create cgroup %s and move pid %d into it: %w", m.where(), pid, err)
	}
	return nil
}

func (m *Manager) apply(pid int) error {
	if m.cfg.Systemd && m.loaded {
		// The container's scope exists already (create started it).
		// The library's Apply would start the transient unit again,
		// which systemd refuses ("already loaded"), so exec into a
		// systemd-managed container failed; AddPid attaches the process
		// to the running unit over D-Bus (AttachProcessesToUnit), so
		// systemd knows it belongs there. The cgroupfs drivers' Apply
		// already joins an existing cgroup.
		return m.lib.AddPid("", pid)
	}
	if m.lay.v2 && !m.cfg.Systemd {
		if err := createV2Dir(m.lay.unifiedRoot, m.unifiedDir); err != nil {
			return err
		}
		return lib.WriteCgroupProc(m.unifiedDir, pid)
	}
	return m.lib.Apply(pid)
}

// Set writes the resource limits. Conversion errors name the config.json
// field. Devices: a nil r.Devices keeps the rules already programmed (so an
// update of memory alone leaves them alone), except on the first Set of a
// manager made by New, where nil means deny every device.
func (m *Manager) Set(r *specs.LinuxResources) error {
	return m.set(r, false)
}

// SetExceptDevices is Set leaving the devices cgroup as it is: a create
// writes the device rules later (Set with only Devices), once the init has
// made the container's device nodes, as runc does. A node the rules deny
// (a config that lists it in linux.devices and denies it in
// linux.resources.devices, as the OCI validation suite's does) must still
// be made, and mknod in a devices cgroup that denies it fails.
func (m *Manager) SetExceptDevices(r *specs.LinuxResources) error {
	return m.set(r, true)
}

func (m *Manager) set(r *specs.LinuxResources, skipDevices bool) error {
	if m.cfg.None {
		return nil
	}
	conv, err := convertResources(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()

	res := conv.res
	// A rootless runtime cannot load an eBPF device filter; its
	// containers cannot make device nodes either.
	if skipDevices || m.cfg.Rootless || !conv.devicesGiven && m.devicesProgrammed {
		res.SkipDevices = true
	}
	if err := m.checkAvailable(res); err != nil {
		return err
	}
	// cgroup v2 has cpu.weight (1-10000) instead of cpu.shares, and the
	// library's fs2 and systemd v2 managers leave the conversion to their
	// caller (runc does it in specconv): without it linux.resources.cpu.shares
	// would be silently ignored on a v2 host. An explicit cpu.weight in
	// linux.resources.unified is written after this (fs2 writes unified
	// last) and so still wins.
	if m.lay.v2 && res.CpuShares != 0 && res.CpuWeight == 0 {
		res.CpuWeight = lib.ConvertCPUSharesToCgroupV2Value(res.CpuShares)
	}

	if !m.lay.v2 && !m.cfg.Systemd && !res.SkipDevices && !m.devicesProgrammed {
		if err := writeDevicesInOrder(m.paths["devices"], res.Devices); err != nil {
			return fmt.Errorf("cgroups: cannot set linux.resources.devices on %s: %w", m.where(), err)
		}
	}
	var unifiedHugetlb []*lib.HugepageLimit
	if m.hugetlbOnUnified() {
		unifiedHugetlb, res.HugetlbLimit = res.HugetlbLimit, nil
	}
	if err := m.lib.Set(res); err != nil {
		return fmt.Errorf("cgroups: cannot set resources on %s: %w", m.where(), err)
	}
	if !res.SkipDevices {
		m.devicesProgrammed = true
	}
	if len(unifiedHugetlb) > 0 {
		if err := m.setUnifiedHugetlb(unifiedHugetlb); err != nil {
			return err
		}
	}
	if conv.kernelTCP != nil && !m.lay.v2 {
		if err := m.setKernelTCP(*conv.kernelTCP); err != nil {
			return err
		}
	}
	// On cgroup v2 there is no separate TCP buffer limit: socket memory is
	// charged to memory.max, so kernelTCP is covered by the memory limit.
	return nil
}

// writeDevicesInOrder programs a fresh v1 devices cgroup rule by rule, in the
// config's order: the spec says entries are applied in the listed order, and
// the library's minimal transition writes them sorted instead, which shows in
// devices.list. It is only used before the container runs (the first Set): on
// a live container the library's transition is what avoids a moment in which
// every device is denied. The library's Set then finds nothing to change and
// still verifies the result.
func writeDevicesInOrder(dir string, rules []*devcfg.Rule) error {
	if dir == "" {
		return nil
	}
	for i, r := range rules {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := lib.WriteFile(dir, file, r.CgroupString()); err != nil {
			return fmt.Errorf("linux.resources.devices[%d] %q: %w", i, r.CgroupString(), err)
		}
	}
	return nil
}

// checkAvailable turns "the controller is not mounted" into an error that
// says which spec field needs it, before anything is written.
func (m *Manager) checkAvailable(res *lib.Resources) error {
	if res.Unified != nil && !m.lay.v2 {
		return errUnifiedOnV1()
	}
	if m.lay.v2 {
		if res.NetClsClassid != 0 || len(res.NetPrioIfpriomap) > 0 {
			return errors.New("linux.resources.network (classID, priorities) needs the cgroup v1 net_cls/net_prio controllers, which cgroup v2 does not have; tag traffic with nftables/eBPF on the cgroup path instead")
		}
		return nil
	}
	missing := func(ctrl, field string) error {
		return fmt.Errorf("%s needs the cgroup v1 %q controller, which is not mounted on this host (mount it under /sys/fs/cgroup/%s or remove %s)", field, ctrl, ctrl, field)
	}
	if res.NetClsClassid != 0 && m.paths["net_cls"] == "" {
		return missing("net_cls", "linux.resources.network.classID")
	}
	if len(res.NetPrioIfpriomap) > 0 && m.paths["net_prio"] == "" {
		return missing("net_prio", "linux.resources.network.priorities")
	}
	if len(res.Rdma) > 0 && m.paths["rdma"] == "" {
		return missing("rdma", "linux.resources.rdma")
	}
	if len(res.HugetlbLimit) > 0 && m.paths["hugetlb"] == "" && !m.hugetlbOnUnified() {
		return missing("hugetlb", "linux.resources.hugepageLimits")
	}
	return nil
}

// hugetlbOnUnified is true on a hybrid host whose hugetlb controller lives on
// the cgroup2 side rather than in a v1 hierarchy.
func (m *Manager) hugetlbOnUnified() bool {
	if m.lay.v2 || m.unifiedDir == "" || m.paths["hugetlb"] != "" {
		return false
	}
	ctrls, err := lib.ReadFile(m.lay.unifiedRoot, "cgroup.controllers")
	return err == nil && hasField(ctrls, "hugetlb")
}

func hasField(s, f string) bool {
	for x := range strings.FieldsSeq(s) {
		if x == f {
			return true
		}
	}
	return false
}

func (m *Manager) setUnifiedHugetlb(limits []*lib.HugepageLimit) error {
	if err := enableInAncestors(m.lay.unifiedRoot, m.unifiedDir, "hugetlb"); err != nil {
		return fmt.Errorf("cgroups: linux.resources.hugepageLimits: %w", err)
	}
	for _, h := range limits {
		val := fmt.Sprint(h.Limit)
		file := "hugetlb." + h.Pagesize + ".max"
		if err := lib.WriteFile(m.unifiedDir, file, val); err != nil {
			return fmt.Errorf("cgroups: linux.resources.hugepageLimits pageSize %q: cannot write %s (is the page size supported? see /sys/kernel/mm/hugepages): %w", h.Pagesize, filepath.Join(m.unifiedDir, file), err)
		}
		// Reservations are limited too, or a process could reserve huge
		// pages beyond the limit and fault them in later (same as runc).
		rsvd := "hugetlb." + h.Pagesize + ".rsvd.max"
		if _, err := os.Stat(filepath.Join(m.unifiedDir, rsvd)); err == nil {
			if err := lib.WriteFile(m.unifiedDir, rsvd, val); err != nil {
				return fmt.Errorf("cgroups: cannot write %s: %w", filepath.Join(m.unifiedDir, rsvd), err)
			}
		}
	}
	return nil
}

func (m *Manager) setKernelTCP(limit int64) error {
	dir := m.paths["memory"]
	const file = "memory.kmem.tcp.limit_in_bytes"
	if dir == "" {
		return errors.New("linux.resources.memory.kernelTCP needs the cgroup v1 memory controller, which is not mounted")
	}
	val := "-1"
	if limit > 0 {
		val = fmt.Sprint(limit)
	}
	if err := lib.WriteFile(dir, file, val); err != nil {
		return fmt.Errorf("cgroups: linux.resources.memory.kernelTCP: cannot write %s (kernel without TCP memory accounting?): %w", filepath.Join(dir, file), err)
	}
	return nil
}

// Freeze stops every process in the cgroup (pause).
func (m *Manager) Freeze() error {
	if m.cfg.None {
		return fmt.Errorf("cgroups: cannot freeze: %w", ErrNoCgroup)
	}
	if err := m.lib.Freeze(lib.Frozen); err != nil {
		return fmt.Errorf("cgroups: cannot freeze %s: %w", m.where(), err)
	}
	return nil
}

// Thaw resumes a frozen cgroup.
func (m *Manager) Thaw() error {
	if m.cfg.None {
		return fmt.Errorf("cgroups: cannot thaw: %w", ErrNoCgroup)
	}
	if err := m.lib.Freeze(lib.Thawed); err != nil {
		return fmt.Errorf("cgroups: cannot thaw %s: %w", m.where(), err)
	}
	return nil
}

// FreezerState returns "FROZEN" or "THAWED". A cgroup that is still freezing
// (v1 "FREEZING") is reported as THAWED: not every task is stopped yet.
func (m *Manager) FreezerState() (string, error) {
	if m.cfg.None {
		return "", fmt.Errorf("cgroups: no freezer: %w", ErrNoCgroup)
	}
	st, err := m.lib.GetFreezerState()
	if err != nil {
		return "", fmt.Errorf("cgroups: cannot read freezer state of %s: %w", m.where(), err)
	}
	if st == lib.Undefined {
		return "", fmt.Errorf("cgroups: no freezer for %s (cgroup missing or freezer controller not mounted)", m.where())
	}
	return string(st), nil
}

// Stats reads usage counters in the shape of runc's `events --stats`.
func (m *Manager) Stats() (*Stats, error) {
	if m.cfg.None {
		return nil, fmt.Errorf("cgroups: no stats: %w", ErrNoCgroup)
	}
	cs, err := m.lib.Stats(nil)
	if err != nil {
		return nil, fmt.Errorf("cgroups: cannot read stats of %s: %w", m.where(), err)
	}
	s := convertStats(cs)
	if m.hugetlbOnUnified() {
		if err := addUnifiedHugetlbStats(m.unifiedDir, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func addUnifiedHugetlbStats(dir string, s *Stats) error {
	ctrls, err := lib.ReadFile(dir, "cgroup.controllers")
	if err != nil || !hasField(ctrls, "hugetlb") {
		// Never enabled (no hugepage limits were set): nothing to report.
		return nil
	}
	for _, size := range lib.HugePageSizes() {
		var h Hugetlb
		cur, err := lib.ReadFile(dir, "hugetlb."+size+".current")
		if err != nil {
			return fmt.Errorf("cgroups: hugetlb stats of %s: %w", dir, err)
		}
		if _, err := fmt.Sscan(cur, &h.Usage); err != nil {
			return fmt.Errorf("cgroups: parse %s/hugetlb.%s.current %q: %w", dir, size, cur, err)
		}
		if ev, err := lib.ReadFile(dir, "hugetlb."+size+".events"); err == nil {
			for line := range strings.SplitSeq(ev, "\n") {
				if k, v, ok := strings.Cut(line, " "); ok && k == "max" {
					fmt.Sscan(v, &h.Failcnt)
				}
			}
		}
		s.Hugetlb[size] = h
	}
	return nil
}

// Pids lists every process in the cgroup and its sub-cgroups.
func (m *Manager) Pids() ([]int, error) {
	if m.cfg.None {
		return nil, fmt.Errorf("cgroups: cannot list processes: %w", ErrNoCgroup)
	}
	pids, err := m.lib.GetAllPids()
	if err != nil {
		return nil, fmt.Errorf("cgroups: cannot list processes of %s: %w", m.where(), err)
	}
	return pids, nil
}

// KillAll sends sig to every process in the cgroup (kill --all, delete
// --force). SIGKILL on cgroup v2 uses cgroup.kill, which the kernel applies
// atomically, forks included. Otherwise the cgroup is frozen while the pids
// are listed and signalled so no process can fork a child that escapes the
// sweep; a cgroup that was already paused stays paused unless sig is
// SIGKILL (frozen processes could not die).
func (m *Manager) KillAll(sig syscall.Signal) error {
	if m.cfg.None {
		return fmt.Errorf("cgroups: cannot signal every process: %w", ErrNoCgroup)
	}
	if !m.Exists() {
		return nil
	}
	if sig == unix.SIGKILL && m.unifiedDir != "" {
		if _, err := os.Stat(filepath.Join(m.unifiedDir, "cgroup.kill")); err == nil {
			if err := lib.WriteFile(m.unifiedDir, "cgroup.kill", "1"); err != nil {
				return fmt.Errorf("cgroups: cannot kill cgroup %s: %w", m.unifiedDir, err)
			}
			if m.lay.v2 {
				return nil
			}
			// Hybrid: a process joined only to the v1 hierarchies
			// would be missed; the sweep below catches it.
		}
	}

	prev, _ := m.lib.GetFreezerState()
	frozeHere := false
	if prev == lib.Thawed {
		// Best effort: if freezing fails we still signal, as runc does.
		frozeHere = m.lib.Freeze(lib.Frozen) == nil
	}
	pids, err := m.lib.GetAllPids()
	var errs []error
	if err != nil {
		errs = append(errs, fmt.Errorf("cgroups: cannot list processes of %s: %w", m.where(), err))
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("cgroups: kill pid %d with %v: %w", pid, sig, err))
		}
	}
	if frozeHere || (prev == lib.Frozen && sig == unix.SIGKILL) {
		if err := m.lib.Freeze(lib.Thawed); err != nil {
			errs = append(errs, fmt.Errorf("cgroups: cannot thaw %s after signalling: %w", m.where(), err))
		}
	}
	return errors.Join(errs...)
}

// Destroy removes the container's cgroup directories, including nested
// ones, and the default parent when it is left empty. It is idempotent. The
// processes must be gone (KillAll(SIGKILL) and wait first).
func (m *Manager) Destroy() error {
	if m.cfg.None {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// Killed processes may take a moment to leave; live ones would make
	// the library retry rmdir for many seconds before failing.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pids, err := m.lib.GetAllPids()
		if err != nil || len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: cannot remove cgroup %s: still %d processes inside (pids %v); kill them first (kill --all, delete --force): %w", m.where(), len(pids), pids, unix.EBUSY)
		}
	}
	if err := m.lib.Destroy(); err != nil {
		return fmt.Errorf("cgroups: cannot remove cgroup %s: %w", m.where(), err)
	}
	if m.lay.v2 && !m.cfg.Systemd {
		// fs2 removes only the leaf.
		if err := lib.RemovePath(m.unifiedDir); err != nil {
			return fmt.Errorf("cgroups: cannot remove cgroup %s: %w", m.unifiedDir, err)
		}
	}
	if m.cleanupParent != "" {
		for _, p := range m.paths {
			parent := filepath.Dir(p)
			if !strings.HasSuffix(parent, m.cleanupParent) {
				continue
			}
			// Fails harmlessly while other containers live there.
			if err := unix.Rmdir(parent); err != nil && !errors.Is(err, unix.ENOTEMPTY) &&
				!errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("cgroups: cannot remove empty parent cgroup %s: %w", parent, err)
			}
		}
	}
	return nil
}
