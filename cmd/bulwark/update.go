package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/urfave/cli/v3"

	"github.com/bulwark-sec/bulwark/pkg/units"
)

// updateCommand is runc's update: containerd's shim sends the new limits as
// JSON LinuxResources on stdin (`update --resources - ID`), a person uses the
// flags.
func updateCommand() *cli.Command {
	str := func(name, usage string) cli.Flag { return &cli.StringFlag{Name: name, Usage: usage} }
	return &cli.Command{
		Name: "update", Usage: "change a running container's resource limits", ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "resources", Aliases: []string{"r"}, Usage: "JSON LinuxResources file, or - for stdin (the flags below are then ignored)"},
			&cli.IntFlag{Name: "blkio-weight", Usage: "block I/O weight, 10 to 1000"},
			str("cpu-period", "CPU CFS period in microseconds"),
			str("cpu-quota", "CPU CFS quota in microseconds per period"),
			str("cpu-burst", "CPU CFS burst in microseconds"),
			str("cpu-share", "CPU shares (relative weight)"),
			&cli.StringFlag{Name: "cpu-shares", Hidden: true, Usage: "alias of --cpu-share"},
			str("cpu-rt-period", "CPU realtime period in microseconds"),
			str("cpu-rt-runtime", "CPU realtime runtime in microseconds"),
			str("cpuset-cpus", "CPUs to use (0-3, 0,1)"),
			str("cpuset-mems", "memory nodes to use"),
			str("cpu-idle", "1 for SCHED_IDLE, 0 for normal"),
			str("memory", "memory limit (bytes, or with k/m/g suffix; -1 for none)"),
			str("memory-reservation", "memory soft limit"),
			str("memory-swap", "memory plus swap limit; -1 for unlimited swap"),
			&cli.StringFlag{Name: "kernel-memory", Hidden: true, Usage: "obsolete, ignored"},
			&cli.StringFlag{Name: "kernel-memory-tcp", Hidden: true, Usage: "obsolete, ignored"},
			&cli.IntFlag{Name: "pids-limit", Usage: "maximum number of processes (-1 for none; 0 allows no new process)"},
			&cli.StringFlag{Name: "l3-cache-schema", Hidden: true},
			&cli.StringFlag{Name: "mem-bw-schema", Hidden: true},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			id, err := needID(cmd)
			if err != nil {
				return err
			}
			r, err := updateResources(cmd)
			if err != nil {
				return err
			}
			return runtimeFrom(cmd).Update(id, r)
		},
	}
}

func updateResources(cmd *cli.Command) (*specs.LinuxResources, error) {
	if cmd.String("l3-cache-schema") != "" || cmd.String("mem-bw-schema") != "" {
		return nil, fmt.Errorf("update: --l3-cache-schema/--mem-bw-schema: Intel RDT is not supported by bulwark")
	}
	if in := cmd.String("resources"); in != "" {
		var rd io.Reader = os.Stdin
		if in != "-" {
			f, err := os.Open(in)
			if err != nil {
				return nil, fmt.Errorf("update: --resources: %w", err)
			}
			defer f.Close()
			rd = f
		}
		r := new(specs.LinuxResources)
		dec := json.NewDecoder(rd)
		if err := dec.Decode(r); err != nil {
			return nil, fmt.Errorf("update: --resources %s: not a JSON LinuxResources object: %w", in, err)
		}
		warnKernelMemory(r)
		return r, nil
	}
	r := &specs.LinuxResources{}
	if v := cmd.Int("blkio-weight"); v != 0 {
		if v < 10 || v > 1000 {
			return nil, fmt.Errorf("update: --blkio-weight %d: must be 10 to 1000", v)
		}
		w := uint16(v)
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	cpu := &specs.LinuxCPU{Cpus: cmd.String("cpuset-cpus"), Mems: cmd.String("cpuset-mems")}
	cpuSet := cpu.Cpus != "" || cpu.Mems != ""
	for _, f := range []struct {
		flag string
		dst  **uint64
	}{{"cpu-period", &cpu.Period}, {"cpu-burst", &cpu.Burst}, {"cpu-share", &cpu.Shares}, {"cpu-shares", &cpu.Shares}, {"cpu-rt-period", &cpu.RealtimePeriod}} {
		if s := cmd.String(f.flag); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("update: --%s %q: want a non-negative integer", f.flag, s)
			}
			*f.dst, cpuSet = &v, true
		}
	}
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"cpu-quota", &cpu.Quota}, {"cpu-rt-runtime", &cpu.RealtimeRuntime}, {"cpu-idle", &cpu.Idle}} {
		if s := cmd.String(f.flag); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("update: --%s %q: want an integer", f.flag, s)
			}
			*f.dst, cpuSet = &v, true
		}
	}
	if cpuSet {
		r.CPU = cpu
	}
	mem := &specs.LinuxMemory{}
	memSet := false
	for _, f := range []struct {
		flag string
		dst  **int64
	}{{"memory", &mem.Limit}, {"memory-reservation", &mem.Reservation}, {"memory-swap", &mem.Swap}} {
		if s := cmd.String(f.flag); s != "" {
			v, err := parseBytes(s)
			if err != nil {
				return nil, fmt.Errorf("update: --%s: %w", f.flag, err)
			}
			*f.dst, memSet = &v, true
		}
	}
	if cmd.String("kernel-memory") != "" || cmd.String("kernel-memory-tcp") != "" {
		logWarn("update: --kernel-memory and --kernel-memory-tcp are obsolete and ignored (kernel memory is charged to --memory)")
	}
	if memSet {
		// Removing the memory limit alone would leave a swap limit below
		// it, which the kernel refuses; runc lifts swap too.
		if mem.Limit != nil && *mem.Limit == -1 && mem.Swap == nil {
			z := int64(-1)
			mem.Swap = &z
		}
		r.Memory = mem
	}
	if cmd.IsSet("pids-limit") {
		// 0 is a limit, not "unlimited" (runc >= 1.4, runtime-spec 1.3):
		// the cgroup library writes it as 1, the least systemd accepts.
		// Only a negative value lifts the limit.
		v := int64(cmd.Int("pids-limit"))
		r.Pids = &specs.LinuxPids{Limit: &v}
	}
	return r, nil
}

func warnKernelMemory(r *specs.LinuxResources) {
	//lint:ignore SA1019 the deprecated field is what old engines still send
	if r.Memory != nil && r.Memory.Kernel != nil {
		logWarn("update: memory.kernel is obsolete and ignored (kernel memory is charged to memory.limit)")
		//lint:ignore SA1019 deprecated field still sent by engines
		r.Memory.Kernel = nil
	}
}

// parseBytes reads a size (pkg/units) or -1 for "no limit".
func parseBytes(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	return units.ParseSize(s)
}
