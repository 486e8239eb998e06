package container

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/cgroups"
)

// Update changes the resource limits of a live container (runc update).
// Fields left nil in r keep their current value: r is merged into the
// config stored in state.json, the merged limits are written to the cgroup,
// and state.json is rewritten so that later reads (state, a second update,
// an engine asking again) see the new limits.
//
// Devices are never changed by update, as in runc: re-programming the
// allowlist of a running container would briefly deny devices it has open,
// and the engines do not send device rules through update.
func (r *Runtime) Update(id string, upd *specs.LinuxResources) error {
	if upd == nil {
		return fmt.Errorf("update %q: no resources given", id)
	}
	st, unlock, err := r.lockedState(id)
	if err != nil {
		return err
	}
	defer unlock()
	if s := r.Status(st); s == specs.StateStopped || s == specs.StateCreating {
		return fmt.Errorf("container %q is %s: %w", id, s, ErrNotRunning)
	}
	if st.Config == nil {
		return fmt.Errorf("container %q: state.json has no config to update", id)
	}
	if st.Config.Linux == nil {
		st.Config.Linux = &specs.Linux{}
	}
	if st.Config.Linux.Resources == nil {
		st.Config.Linux.Resources = &specs.LinuxResources{}
	}
	merged := st.Config.Linux.Resources
	mergeResources(merged, upd)

	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return fmt.Errorf("container %q: %w", id, err)
	}
	set := *merged
	set.Devices = nil // keep the programmed allowlist (see above)
	if set.CPU != nil {
		// Shares and idle are written only when the update names them,
		// as in runc: the kernel refuses cpu.shares (cpu.weight) while the
		// group is idle, so writing the stored shares again would make
		// every later update of an idle container fail, and idle could
		// never go back to 0.
		c := *set.CPU
		if upd.CPU == nil || upd.CPU.Shares == nil {
			c.Shares = nil
		}
		if upd.CPU == nil || upd.CPU.Idle == nil {
			c.Idle = nil
		}
		set.CPU = &c
	}
	if err := m.Set(&set); err != nil {
		return fmt.Errorf("container %q: update: %w", id, err)
	}
	if err := r.saveState(st); err != nil {
		return fmt.Errorf("container %q: limits applied but state.json not rewritten: %w", id, err)
	}
	return nil
}

// mergeResources copies every field set in upd over dst. Per-device block
// I/O entries and hugepage limits are replaced by key (device, page size)
// rather than appended, so repeated updates do not pile up entries.
func mergeResources(dst, upd *specs.LinuxResources) {
	if m := upd.Memory; m != nil {
		if dst.Memory == nil {
			dst.Memory = &specs.LinuxMemory{}
		}
		d := dst.Memory
		setI64(&d.Limit, m.Limit)
		setI64(&d.Reservation, m.Reservation)
		setI64(&d.Swap, m.Swap)
		setI64(&d.KernelTCP, m.KernelTCP)
		if m.Swappiness != nil {
			v := *m.Swappiness
			d.Swappiness = &v
		}
		if m.DisableOOMKiller != nil {
			v := *m.DisableOOMKiller
			d.DisableOOMKiller = &v
		}
		if m.UseHierarchy != nil {
			v := *m.UseHierarchy
			d.UseHierarchy = &v
		}
		if m.CheckBeforeUpdate != nil {
			v := *m.CheckBeforeUpdate
			d.CheckBeforeUpdate = &v
		}
	}
	if c := upd.CPU; c != nil {
		if dst.CPU == nil {
			dst.CPU = &specs.LinuxCPU{}
		}
		d := dst.CPU
		setU64(&d.Shares, c.Shares)
		setI64(&d.Quota, c.Quota)
		setU64(&d.Burst, c.Burst)
		setU64(&d.Period, c.Period)
		setI64(&d.RealtimeRuntime, c.RealtimeRuntime)
		setU64(&d.RealtimePeriod, c.RealtimePeriod)
		setI64(&d.Idle, c.Idle)
		if c.Cpus != "" {
			d.Cpus = c.Cpus
		}
		if c.Mems != "" {
			d.Mems = c.Mems
		}
	}
	if p := upd.Pids; p != nil && p.Limit != nil {
		v := *p.Limit
		dst.Pids = &specs.LinuxPids{Limit: &v}
	}
	if b := upd.BlockIO; b != nil {
		if dst.BlockIO == nil {
			dst.BlockIO = &specs.LinuxBlockIO{}
		}
		d := dst.BlockIO
		if b.Weight != nil {
			v := *b.Weight
			d.Weight = &v
		}
		if b.LeafWeight != nil {
			v := *b.LeafWeight
			d.LeafWeight = &v
		}
		for _, w := range b.WeightDevice {
			d.WeightDevice = upsertWeight(d.WeightDevice, w)
		}
		d.ThrottleReadBpsDevice = upsertThrottle(d.ThrottleReadBpsDevice, b.ThrottleReadBpsDevice)
		d.ThrottleWriteBpsDevice = upsertThrottle(d.ThrottleWriteBpsDevice, b.ThrottleWriteBpsDevice)
		d.ThrottleReadIOPSDevice = upsertThrottle(d.ThrottleReadIOPSDevice, b.ThrottleReadIOPSDevice)
		d.ThrottleWriteIOPSDevice = upsertThrottle(d.ThrottleWriteIOPSDevice, b.ThrottleWriteIOPSDevice)
	}
	for _, h := range upd.HugepageLimits {
		replaced := false
		for i := range dst.HugepageLimits {
			if dst.HugepageLimits[i].Pagesize == h.Pagesize {
				dst.HugepageLimits[i].Limit = h.Limit
				replaced = true
			}
		}
		if !replaced {
			dst.HugepageLimits = append(dst.HugepageLimits, h)
		}
	}
	if len(upd.Unified) > 0 {
		if dst.Unified == nil {
			dst.Unified = map[string]string{}
		}
		for k, v := range upd.Unified {
			dst.Unified[k] = v
		}
	}
}

func setI64(dst **int64, v *int64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}

func setU64(dst **uint64, v *uint64) {
	if v != nil {
		x := *v
		*dst = &x
	}
}

func upsertWeight(list []specs.LinuxWeightDevice, w specs.LinuxWeightDevice) []specs.LinuxWeightDevice {
	for i := range list {
		if list[i].Major == w.Major && list[i].Minor == w.Minor {
			list[i] = w
			return list
		}
	}
	return append(list, w)
}

func upsertThrottle(list, upd []specs.LinuxThrottleDevice) []specs.LinuxThrottleDevice {
	for _, t := range upd {
		found := false
		for i := range list {
			if list[i].Major == t.Major && list[i].Minor == t.Minor {
				list[i].Rate = t.Rate
				found = true
			}
		}
		if !found {
			list = append(list, t)
		}
	}
	return list
}

// Stats reads the container's cgroup counters (events --stats).
func (r *Runtime) Stats(id string) (*cgroups.Stats, error) {
	st, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	if s := r.Status(st); s == specs.StateStopped || s == specs.StateCreating {
		return nil, fmt.Errorf("container %q is %s: %w", id, s, ErrNotRunning)
	}
	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	return m.Stats()
}

// OOMCounter returns a function that reports how many times the kernel's
// OOM killer has fired in the container's cgroup; events polls it to emit
// "oom" events.
func (r *Runtime) OOMCounter(id string) (func() (uint64, error), error) {
	st, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return nil, fmt.Errorf("container %q: %w", id, err)
	}
	return m.OOMKills, nil
}

// Alive reports whether the container's init is still running (events stops
// streaming once it is not).
func (r *Runtime) Alive(id string) bool {
	st, err := r.Load(id)
	if err != nil {
		return false
	}
	s := r.Status(st)
	return s != specs.StateStopped && s != specs.StateCreating
}
