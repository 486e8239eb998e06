package cgroups

import (
	lib "github.com/opencontainers/cgroups"
)

// Stats mirrors runc's types.Stats (the "data" of `runc events --stats`) so
// that tools parsing runc's output parse ours unchanged. Intel RDT and
// network interface counters are not cgroup data and are left to the
// callers that own them.
type Stats struct {
	CPU     CPU                `json:"cpu"`
	CPUSet  CPUSet             `json:"cpuset"`
	Memory  Memory             `json:"memory"`
	Pids    Pids               `json:"pids"`
	Blkio   Blkio              `json:"blkio"`
	Hugetlb map[string]Hugetlb `json:"hugetlb"`
}

// PSIStats is the pressure stall information of one resource.
type PSIStats = lib.PSIStats

// PSIData is one line (some/full) of a pressure file.
type PSIData = lib.PSIData

type Hugetlb struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

type Blkio struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
	IoQueuedRecursive       []BlkioEntry `json:"ioQueueRecursive,omitempty"`
	IoServiceTimeRecursive  []BlkioEntry `json:"ioServiceTimeRecursive,omitempty"`
	IoWaitTimeRecursive     []BlkioEntry `json:"ioWaitTimeRecursive,omitempty"`
	IoMergedRecursive       []BlkioEntry `json:"ioMergedRecursive,omitempty"`
	IoTimeRecursive         []BlkioEntry `json:"ioTimeRecursive,omitempty"`
	SectorsRecursive        []BlkioEntry `json:"sectorsRecursive,omitempty"`
	PSI                     *PSIStats    `json:"psi,omitempty"`
}

type Pids struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// CPUUsage is in nanoseconds.
type CPUUsage struct {
	Total        uint64   `json:"total,omitempty"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	Kernel       uint64   `json:"kernel"`
	User         uint64   `json:"user"`
}

type CPU struct {
	Usage      CPUUsage   `json:"usage,omitempty"`
	Throttling Throttling `json:"throttling,omitempty"`
	PSI        *PSIStats  `json:"psi,omitempty"`
}

type CPUSet struct {
	CPUs                  []uint16 `json:"cpus,omitempty"`
	CPUExclusive          uint64   `json:"cpu_exclusive"`
	Mems                  []uint16 `json:"mems,omitempty"`
	MemHardwall           uint64   `json:"mem_hardwall"`
	MemExclusive          uint64   `json:"mem_exclusive"`
	MemoryMigrate         uint64   `json:"memory_migrate"`
	MemorySpreadPage      uint64   `json:"memory_spread_page"`
	MemorySpreadSlab      uint64   `json:"memory_spread_slab"`
	MemoryPressure        uint64   `json:"memory_pressure"`
	SchedLoadBalance      uint64   `json:"sched_load_balance"`
	SchedRelaxDomainLevel int64    `json:"sched_relax_domain_level"`
}

type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

type Memory struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage,omitempty"`
	Swap      MemoryEntry       `json:"swap,omitempty"`
	Kernel    MemoryEntry       `json:"kernel,omitempty"`
	KernelTCP MemoryEntry       `json:"kernelTCP,omitempty"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
	PSI       *PSIStats         `json:"psi,omitempty"`
}

func convertStats(cs *lib.Stats) *Stats {
	s := &Stats{Hugetlb: make(map[string]Hugetlb)}
	if cs == nil {
		return s
	}
	cu := cs.CpuStats.CpuUsage
	s.CPU.Usage = CPUUsage{
		Total:        cu.TotalUsage,
		Percpu:       cu.PercpuUsage,
		PercpuKernel: cu.PercpuUsageInKernelmode,
		PercpuUser:   cu.PercpuUsageInUsermode,
		Kernel:       cu.UsageInKernelmode,
		User:         cu.UsageInUsermode,
	}
	td := cs.CpuStats.ThrottlingData
	s.CPU.Throttling = Throttling{Periods: td.Periods, ThrottledPeriods: td.ThrottledPeriods, ThrottledTime: td.ThrottledTime}
	s.CPU.PSI = cs.CpuStats.PSI

	s.CPUSet = CPUSet(cs.CPUSetStats)

	ms := cs.MemoryStats
	s.Memory = Memory{
		Cache:     ms.Cache,
		Usage:     memoryEntry(ms.Usage),
		Swap:      memoryEntry(ms.SwapUsage),
		Kernel:    memoryEntry(ms.KernelUsage),
		KernelTCP: memoryEntry(ms.KernelTCPUsage),
		Raw:       ms.Stats,
		PSI:       ms.PSI,
	}

	s.Pids = Pids{Current: cs.PidsStats.Current, Limit: cs.PidsStats.Limit}

	bs := cs.BlkioStats
	s.Blkio = Blkio{
		IoServiceBytesRecursive: blkioEntries(bs.IoServiceBytesRecursive),
		IoServicedRecursive:     blkioEntries(bs.IoServicedRecursive),
		IoQueuedRecursive:       blkioEntries(bs.IoQueuedRecursive),
		IoServiceTimeRecursive:  blkioEntries(bs.IoServiceTimeRecursive),
		IoWaitTimeRecursive:     blkioEntries(bs.IoWaitTimeRecursive),
		IoMergedRecursive:       blkioEntries(bs.IoMergedRecursive),
		IoTimeRecursive:         blkioEntries(bs.IoTimeRecursive),
		SectorsRecursive:        blkioEntries(bs.SectorsRecursive),
		PSI:                     bs.PSI,
	}

	for size, h := range cs.HugetlbStats {
		s.Hugetlb[size] = Hugetlb{Usage: h.Usage, Max: h.MaxUsage, Failcnt: h.Failcnt}
	}
	return s
}

func memoryEntry(d lib.MemoryData) MemoryEntry {
	return MemoryEntry{Limit: d.Limit, Usage: d.Usage, Max: d.MaxUsage, Failcnt: d.Failcnt}
}

func blkioEntries(in []lib.BlkioStatEntry) []BlkioEntry {
	if len(in) == 0 {
		return nil
	}
	out := make([]BlkioEntry, len(in))
	for i, e := range in {
		out[i] = BlkioEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value}
	}
	return out
}
