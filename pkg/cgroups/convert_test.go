package cgroups

import (
	"reflect"
	"strings"
	"testing"

	lib "github.com/opencontainers/cgroups"
	devcfg "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConvertDevices(t *testing.T) {
	tests := []struct {
		name    string
		in      []specs.LinuxDeviceCgroup
		want    []*devcfg.Rule
		wantErr string
	}{
		{
			name: "deny all then allow null",
			in: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
			},
			want: []*devcfg.Rule{
				{Type: 'a', Major: -1, Minor: -1, Permissions: "rwm", Allow: false},
				{Type: 'c', Major: 1, Minor: 3, Permissions: "rwm", Allow: true},
			},
		},
		{
			name: "nil major/minor are wildcards, access reordered",
			in:   []specs.LinuxDeviceCgroup{{Allow: true, Type: "b", Access: "mwr"}},
			want: []*devcfg.Rule{{Type: 'b', Major: -1, Minor: -1, Permissions: "rwm", Allow: true}},
		},
		{
			name: "explicit -1 minor, empty access means rwm",
			in:   []specs.LinuxDeviceCgroup{{Allow: true, Type: "c", Major: ptr(int64(136)), Minor: ptr(int64(-1))}},
			want: []*devcfg.Rule{{Type: 'c', Major: 136, Minor: -1, Permissions: "rwm", Allow: true}},
		},
		{name: "bad type", in: []specs.LinuxDeviceCgroup{{Type: "p"}}, wantErr: "devices[0].type"},
		{name: "bad access", in: []specs.LinuxDeviceCgroup{{Access: "rx"}}, wantErr: "devices[0].access"},
		{name: "negative major", in: []specs.LinuxDeviceCgroup{{Type: "c", Major: ptr(int64(-2))}}, wantErr: "major -2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := convertDevices(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.Contains(err.Error(), "linux.resources.devices[") {
					t.Fatalf("error %q does not name the field", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestConvertResources(t *testing.T) {
	tests := []struct {
		name    string
		in      *specs.LinuxResources
		check   func(t *testing.T, c *converted)
		wantErr string
	}{
		{
			name: "nil resources",
			in:   nil,
			check: func(t *testing.T, c *converted) {
				if c.devicesGiven || !reflect.DeepEqual(*c.res, lib.Resources{}) {
					t.Fatalf("nil resources converted to %+v (devicesGiven %v)", c.res, c.devicesGiven)
				}
			},
		},
		{
			name: "memory",
			in: &specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20)), Swap: ptr(int64(128 << 20)),
				KernelTCP: ptr(int64(1 << 20)), Swappiness: ptr(uint64(10)), DisableOOMKiller: ptr(true),
			}},
			check: func(t *testing.T, c *converted) {
				r := c.res
				if r.Memory != 64<<20 || r.MemoryReservation != 32<<20 || r.MemorySwap != 128<<20 ||
					*r.MemorySwappiness != 10 || !r.OomKillDisable || *c.kernelTCP != 1<<20 {
					t.Fatalf("memory converted wrongly: %+v kernelTCP %v", r, c.kernelTCP)
				}
			},
		},
		{
			name: "cpu",
			in: &specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000)), Burst: ptr(uint64(1000)),
				RealtimeRuntime: ptr(int64(950)), RealtimePeriod: ptr(uint64(1000)), Cpus: "0", Mems: "0", Idle: ptr(int64(1)),
			}},
			check: func(t *testing.T, c *converted) {
				r := c.res
				if r.CpuShares != 512 || r.CpuQuota != 50000 || r.CpuPeriod != 100000 || *r.CpuBurst != 1000 ||
					r.CpuRtRuntime != 950 || r.CpuRtPeriod != 1000 || r.CpusetCpus != "0" || r.CpusetMems != "0" || *r.CPUIdle != 1 {
					t.Fatalf("cpu converted wrongly: %+v", r)
				}
			},
		},
		{
			name: "pids, blkio, hugetlb, network, unified",
			in: &specs.LinuxResources{
				Pids: &specs.LinuxPids{Limit: ptr(int64(10))},
				BlockIO: &specs.LinuxBlockIO{
					Weight: ptr(uint16(300)), LeafWeight: ptr(uint16(200)),
					WeightDevice:          []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr(uint16(500))}},
					ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
				},
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
				Network:        &specs.LinuxNetwork{ClassID: ptr(uint32(0x100001)), Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}}},
				Unified:        map[string]string{"memory.high": "1G"},
			},
			check: func(t *testing.T, c *converted) {
				r := c.res
				if *r.PidsLimit != 10 || r.BlkioWeight != 300 || r.BlkioLeafWeight != 200 ||
					len(r.BlkioWeightDevice) != 1 || r.BlkioWeightDevice[0].Weight != 500 || r.BlkioWeightDevice[0].Major != 8 ||
					len(r.BlkioThrottleReadBpsDevice) != 1 || r.BlkioThrottleReadBpsDevice[0].Rate != 1<<20 ||
					len(r.HugetlbLimit) != 1 || r.HugetlbLimit[0].Pagesize != "2MB" || r.HugetlbLimit[0].Limit != 4<<20 ||
					r.NetClsClassid != 0x100001 || r.NetPrioIfpriomap[0].CgroupString() != "eth0 5" ||
					r.Unified["memory.high"] != "1G" {
					t.Fatalf("converted wrongly: %+v", r)
				}
			},
		},
		{
			name: "empty device list is given (deny all)",
			in:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{}},
			check: func(t *testing.T, c *converted) {
				if !c.devicesGiven || len(c.res.Devices) != 0 {
					t.Fatalf("devicesGiven %v devices %v", c.devicesGiven, c.res.Devices)
				}
			},
		},
		{name: "swappiness out of range", in: &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr(uint64(101))}}, wantErr: "memory.swappiness"},
		{name: "cpu idle invalid", in: &specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: ptr(int64(2))}}, wantErr: "cpu.idle"},
		{name: "hugepage without size", in: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Limit: 1}}}, wantErr: "hugepageLimits[0].pageSize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := convertResources(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
