package main

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// vmTable is `bulwark run --isolation vm ROOTFS -- /bin/true` next to the
// same run in a namespace container: boot-to-exit wall time, the peak
// memory of the whole process tree (bulwark, QEMU, virtiofsd), and where
// the VM's time went, from the steps pkg/vm reports under
// BULWARK_VM_TIMING=1 (host clock, since the run began).
type vmTable struct {
	runs           int
	skipped        string // why the VM rows were not measured; "" when they were
	accel          string
	kernel         string
	wall, cpu, rss series // "vm", "namespace"
	steps          map[string][]float64
	order          []string
	fails          *failures
}

var vmStepRe = regexp.MustCompile(`(?m)^vm: (.+) at ([0-9.]+)(ms|s)\b`)

// vmSteps reads the timing lines of one run's stderr into ms per step.
func vmSteps(stderr string) (names []string, at map[string]float64) {
	at = map[string]float64{}
	for _, m := range vmStepRe.FindAllStringSubmatch(stderr, -1) {
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			continue
		}
		if m[3] == "s" {
			v *= 1000
		}
		if _, dup := at[m[1]]; !dup {
			names = append(names, m[1])
		}
		at[m[1]] = v
	}
	return names, at
}

func (b *bench) benchVM() {
	t := &vmTable{runs: b.n(5, 2), wall: series{}, cpu: series{}, rss: series{}, steps: map[string][]float64{}, fails: newFailures()}
	b.rep.vm = t
	if b.bulwark == nil {
		t.skipped = "no bulwark binary"
		return
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.skipped = "qemu-system-x86_64 is not installed (scripts/install-vm.sh)"
		return
	}
	bw := b.bulwark.bin
	if o, err := exec.Command(bw, "check").CombinedOutput(); err == nil {
		for _, l := range strings.Split(string(o), "\n") {
			k, v, ok := strings.Cut(strings.TrimSpace(l), ": ")
			switch {
			case ok && k == "vm.accel":
				t.accel = v
			case ok && k == "vm.kernel":
				t.kernel = v
			}
		}
	}
	vmArgs := []string{"/usr/bin/env", "BULWARK_VM_TIMING=1", bw, "run", "--isolation", "vm", b.rootfs, "--", "/bin/true"}
	nsArgs := []string{bw, "run", b.rootfs, "--", "/bin/true"}
	b.logf("vm: %d runs of --isolation vm next to namespace runs", t.runs)
	// One boot first, not recorded: it builds the cached kernel and
	// initramfs, which every later run reuses.
	if r := run(b.work, vmArgs...); !r.ok() {
		t.skipped = "the first VM run failed: " + r.err()
		return
	}
	for i := 0; i < t.runs && !stopped.Load(); i++ {
		for _, c := range []struct {
			name string
			argv []string
		}{{"vm", vmArgs}, {"namespace", nsArgs}} {
			s := startSampler(2 * time.Millisecond)
			r := run(b.work, c.argv...)
			s.finish()
			reapOrphans()
			if !r.ok() {
				t.fails.add(c.name, r.err())
				continue
			}
			t.wall.add(c.name, ms(r.wall))
			t.cpu.add(c.name, ms(r.cpu))
			t.rss.add(c.name, float64(s.peakRSS))
			if c.name != "vm" {
				continue
			}
			names, at := vmSteps(r.stderr)
			if len(t.order) == 0 {
				t.order = names
			}
			for _, n := range names {
				t.steps[n] = append(t.steps[n], at[n])
			}
		}
	}
	b.raw["vm_wall_ms"], b.raw["vm_cpu_ms"], b.raw["vm_peak_rss_kib"], b.raw["vm_steps_ms"] = t.wall, t.cpu, t.rss, t.steps
}

func (b *bench) renderVM(m *md) {
	t := b.rep.vm
	if t == nil {
		return
	}
	m.p("## 8. One VM per container: `bulwark run --isolation vm`")
	m.p("")
	if t.skipped != "" {
		m.p("Not measured: %s.", mdEscape(t.skipped))
		m.p("")
		return
	}
	accel := t.accel
	if accel == "" {
		accel = "?"
	}
	m.p("Boot-to-exit of `bulwark run --isolation vm ROOTFS -- /bin/true` (QEMU boots the guest kernel, the agent mounts the rootfs and runs the payload, QEMU ends), %d runs interleaved with the same `bulwark run ROOTFS -- /bin/true` in a namespace container. Accelerator: **%s**; guest kernel: `%s`. Peak RSS is the sum over the run's whole process tree (bulwark, QEMU, virtiofsd), sampled every 2 ms.", t.runs, accel, mdEscape(t.kernel))
	if accel != "kvm" {
		m.p("")
		m.p("This host has no real KVM, so the guest runs under QEMU's TCG emulator: every guest instruction is translated. Real KVM figures need a KVM host; docs/vm.md says what the design allows there.")
	}
	m.p("")
	m.p("CPU is user+sys of the whole tree: under TCG one thread emulates the guest, so on a loaded host the CPU time is the steadier figure, close to what the wall time is on an idle core.")
	m.p("")
	m.head("container", "boot-to-exit wall, median (IQR)", "CPU, median", "peak RSS of the tree, median", "failures")
	for _, n := range []string{"vm", "namespace"} {
		m.row(n, cell(t.wall[n], fmtMs, t.fails, n), fmtMs(median(t.cpu[n])), fmtKiB(median(t.rss[n])), fmt.Sprintf("%d/%d", t.fails.n[n], t.runs))
	}
	m.p("")
	if len(t.order) > 0 {
		m.p("Where the VM's time goes (median host time since the run began at which each step was reached; `guest …` steps are the agent's, reported over the control port):")
		m.p("")
		m.head("step", "at (median)")
		for _, n := range t.order {
			m.row(mdEscape(n), fmtMs(median(t.steps[n])))
		}
		m.p("")
	}
	for _, n := range []string{"vm", "namespace"} {
		if msg := t.fails.first[n]; msg != "" {
			m.p("First %s failure: %s", n, mdEscape(msg))
			m.p("")
		}
	}
}
