package cgroups

import (
	"fmt"

	lib "github.com/opencontainers/cgroups"
	devcfg "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// converted is an OCI resources block translated for the library, plus the
// few knobs the library no longer handles and Bulwark writes itself.
type converted struct {
	res *lib.Resources
	// devicesGiven records whether the spec carried a device list at all
	// (nil vs. empty matters: see Manager.Set).
	devicesGiven bool
	// kernelTCP is memory.kmem.tcp.limit_in_bytes (cgroup v1 only).
	kernelTCP *int64
}

// convertResources translates the OCI resources into the library's form,
// checking the values the library would otherwise pass to the kernel
// unchecked. Field paths in errors follow config.json.
func convertResources(r *specs.LinuxResources) (*converted, error) {
	c := &converted{res: &lib.Resources{}}
	if r == nil {
		return c, nil
	}
	res := c.res

	if r.Devices != nil {
		c.devicesGiven = true
		rules, err := convertDevices(r.Devices)
		if err != nil {
			return nil, err
		}
		res.Devices = rules
	}

	if m := r.Memory; m != nil {
		if m.Limit != nil {
			res.Memory = *m.Limit
		}
		if m.Reservation != nil {
			res.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			res.MemorySwap = *m.Swap
		}
		if m.Swappiness != nil {
			if *m.Swappiness > 100 {
				return nil, fmt.Errorf("linux.resources.memory.swappiness: %d is out of range 0-100", *m.Swappiness)
			}
			v := *m.Swappiness
			res.MemorySwappiness = &v
		}
		if m.DisableOOMKiller != nil {
			res.OomKillDisable = *m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			res.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
		// memory.kernel is deprecated by the runtime spec and the kernel
		// (since 5.16 kmem.limit_in_bytes rejects writes); kernel memory is
		// charged to the ordinary memory limit, so ignoring it does not
		// lift any limit. useHierarchy is always on in current kernels.
		if m.KernelTCP != nil {
			v := *m.KernelTCP
			c.kernelTCP = &v
		}
	}

	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil {
			res.CpuShares = *cpu.Shares
		}
		if cpu.Quota != nil {
			res.CpuQuota = *cpu.Quota
		}
		if cpu.Burst != nil {
			v := *cpu.Burst
			res.CpuBurst = &v
		}
		if cpu.Period != nil {
			res.CpuPeriod = *cpu.Period
		}
		if cpu.RealtimeRuntime != nil {
			res.CpuRtRuntime = *cpu.RealtimeRuntime
		}
		if cpu.RealtimePeriod != nil {
			res.CpuRtPeriod = *cpu.RealtimePeriod
		}
		res.CpusetCpus = cpu.Cpus
		res.CpusetMems = cpu.Mems
		if cpu.Idle != nil {
			if *cpu.Idle != 0 && *cpu.Idle != 1 {
				return nil, fmt.Errorf("linux.resources.cpu.idle: %d is invalid (0 = normal, 1 = SCHED_IDLE)", *cpu.Idle)
			}
			v := *cpu.Idle
			res.CPUIdle = &v
		}
	}

	if r.Pids != nil && r.Pids.Limit != nil {
		v := *r.Pids.Limit
		res.PidsLimit = &v
	}

	if b := r.BlockIO; b != nil {
		if b.Weight != nil {
			res.BlkioWeight = *b.Weight
		}
		if b.LeafWeight != nil {
			res.BlkioLeafWeight = *b.LeafWeight
		}
		for _, wd := range b.WeightDevice {
			var w, lw uint16
			if wd.Weight != nil {
				w = *wd.Weight
			}
			if wd.LeafWeight != nil {
				lw = *wd.LeafWeight
			}
			res.BlkioWeightDevice = append(res.BlkioWeightDevice, lib.NewWeightDevice(wd.Major, wd.Minor, w, lw))
		}
		throttle := func(in []specs.LinuxThrottleDevice) []*lib.ThrottleDevice {
			var out []*lib.ThrottleDevice
			for _, td := range in {
				out = append(out, lib.NewThrottleDevice(td.Major, td.Minor, td.Rate))
			}
			return out
		}
		res.BlkioThrottleReadBpsDevice = throttle(b.ThrottleReadBpsDevice)
		res.BlkioThrottleWriteBpsDevice = throttle(b.ThrottleWriteBpsDevice)
		res.BlkioThrottleReadIOPSDevice = throttle(b.ThrottleReadIOPSDevice)
		res.BlkioThrottleWriteIOPSDevice = throttle(b.ThrottleWriteIOPSDevice)
	}

	for i, h := range r.HugepageLimits {
		if h.Pagesize == "" {
			return nil, fmt.Errorf("linux.resources.hugepageLimits[%d].pageSize is empty (expected a size like \"2MB\")", i)
		}
		res.HugetlbLimit = append(res.HugetlbLimit, &lib.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
	}

	if n := r.Network; n != nil {
		if n.ClassID != nil {
			res.NetClsClassid = *n.ClassID
		}
		for _, p := range n.Priorities {
			res.NetPrioIfpriomap = append(res.NetPrioIfpriomap, &lib.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}

	if len(r.Rdma) > 0 {
		res.Rdma = make(map[string]lib.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			res.Rdma[dev] = lib.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}

	if r.Unified != nil {
		res.Unified = make(map[string]string, len(r.Unified))
		for k, v := range r.Unified {
			res.Unified[k] = v
		}
	}
	return c, nil
}

// convertDevices maps OCI device cgroup rules to library rules. Type "" and
// "a" mean every device; a nil major or minor is the wildcard, like -1.
func convertDevices(in []specs.LinuxDeviceCgroup) ([]*devcfg.Rule, error) {
	out := make([]*devcfg.Rule, 0, len(in))
	for i, d := range in {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		var t devcfg.Type
		switch d.Type {
		case "", "a":
			t = devcfg.WildcardDevice
		case "b":
			t = devcfg.BlockDevice
		case "c":
			t = devcfg.CharDevice
		default:
			return nil, fmt.Errorf("%s.type: %q is not one of \"a\", \"b\", \"c\"", field, d.Type)
		}
		major, minor := int64(devcfg.Wildcard), int64(devcfg.Wildcard)
		if d.Major != nil {
			major = *d.Major
		}
		if d.Minor != nil {
			minor = *d.Minor
		}
		if major < devcfg.Wildcard || minor < devcfg.Wildcard {
			return nil, fmt.Errorf("%s: major %d / minor %d must be >= 0 or -1 for any", field, major, minor)
		}
		access := d.Access
		if access == "" {
			// An empty access string means "all" in the spec's examples
			// and in runc; keeping it empty would make an allow rule that
			// allows nothing and a deny rule that denies nothing.
			access = "rwm"
		}
		perms, ok := canonicalAccess(access)
		if !ok {
			return nil, fmt.Errorf("%s.access: %q must be a combination of \"r\", \"w\" and \"m\"", field, d.Access)
		}
		out = append(out, &devcfg.Rule{Type: t, Major: major, Minor: minor, Permissions: perms, Allow: d.Allow})
	}
	return out, nil
}

// canonicalAccess accepts the letters r, w, m in any order (the spec does not
// fix one) and returns them in the order the kernel and the library's
// emulator print, so that comparing rule sets works.
func canonicalAccess(a string) (devcfg.Permissions, bool) {
	var r, w, m bool
	for _, ch := range a {
		switch ch {
		case 'r':
			r = true
		case 'w':
			w = true
		case 'm':
			m = true
		default:
			return "", false
		}
	}
	var out string
	if r {
		out += "r"
	}
	if w {
		out += "w"
	}
	if m {
		out += "m"
	}
	return devcfg.Permissions(out), true
}
