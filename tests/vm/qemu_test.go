package vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bulwark-sec/bulwark/internal/procstat"
)

// guestKernel returns the kernel to boot: $BULWARK_VM_KERNEL, or the newest
// /boot/vmlinuz-* (scripts/install-vm.sh installs Debian's linux-image-amd64).
func guestKernel() (string, error) {
	if k := os.Getenv("BULWARK_VM_KERNEL"); k != "" {
		if _, err := os.Stat(k); err != nil {
			return "", fmt.Errorf("BULWARK_VM_KERNEL: %w", err)
		}
		return k, nil
	}
	ks, _ := filepath.Glob("/boot/vmlinuz-*")
	if len(ks) == 0 {
		return "", errors.New("no /boot/vmlinuz-* (run scripts/install-vm.sh, which installs linux-image-amd64)")
	}
	sort.Strings(ks)
	return ks[len(ks)-1], nil
}

// needVM skips the test, saying why, when this machine cannot boot the
// guest; scripts/test.sh installs everything, so in CI it runs.
func needVM(t *testing.T) (qemu, kernel string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the VM test reads /boot and builds a rootfs owned by several uids; run as root")
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skip("qemu-system-x86_64 not installed (scripts/install-vm.sh installs qemu-system-x86):", err)
	}
	kernel, err = guestKernel()
	if err != nil && os.Getenv("BULWARK_VM_KERNEL") != "" {
		// A kernel asked for by name that is not there is a mistake, not
		// a machine without a kernel.
		t.Fatal(err)
	}
	if err != nil {
		t.Skip(err)
	}
	// Debian's /boot/vmlinuz-* is 0600; the check makes a permission
	// problem a clear message instead of a QEMU error.
	if f, err := os.Open(kernel); err != nil {
		t.Skip("cannot read the guest kernel:", err)
	} else {
		f.Close()
	}
	return qemu, kernel
}

// bootResult is what one boot reported on its serial console.
type bootResult struct {
	console []string          // every line, for the failure log
	checks  map[string]string // check -> "PASS detail" / "FAIL why"
	order   []string          // checks in the order they reported
	data    map[string]string // BWVM DATA name -> rest of the line
	done    bool              // the guest printed BWVM DONE
	// Where a boot's time went, on the host's wall clock since QEMU
	// started and in QEMU's CPU time (user+sys): on a loaded host the wall
	// time is mostly the load's, the CPU time what the guest's work cost.
	at     []stamp // one per console line
	init   stamp   // the initramfs's /init began ("BWVM INIT")
	booted stamp   // the checks began ("BWVM BOOTED")
	end    stamp   // QEMU exited
}

// stamp is a moment of a boot: wall time since QEMU started, and QEMU's
// CPU time until then.
type stamp struct{ wall, cpu time.Duration }

func (s stamp) String() string {
	return fmt.Sprintf("%v (CPU %v)", s.wall.Round(time.Millisecond), s.cpu.Round(time.Millisecond))
}

// reportedAt is when the guest first reported check c.
func (r *bootResult) reportedAt(c string) stamp {
	for i, l := range r.console {
		if strings.Contains(l, "BWVM PASS "+c) || strings.Contains(l, "BWVM FAIL "+c) {
			return r.at[i]
		}
	}
	return stamp{}
}

// boot runs the guest once and collects its framed lines. The guest has no
// network device (-nic none) and no disk: its only input is the initramfs,
// its only output the serial console. The context bounds the boot; QEMU is
// killed when it expires or when the test fails, so nothing outlives it.
// extra is appended to QEMU's arguments (the systemd test's read-only 9p
// export of the host root).
func boot(ctx context.Context, qemu, kernel, initrd string, cmdline string, extra ...string) (*bootResult, error) {
	args := []string{
		// qemu64 with RDRAND: see tcgCmdline. Two vCPUs: one cost about
		// as much CPU (18.7 against 17.6 s at load 20-35) and, one thread
		// on a loaded host, took longer (42 against 25 s).
		"-accel", "tcg", "-cpu", "qemu64,+rdrand", "-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", cmdline + tcgCmdline,
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.Stdin = nil
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// WaitDelay: if QEMU is killed, do not wait for anything it forked
	// that could hold the pipe open.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	started := time.Now()
	now := func() stamp {
		st := stamp{wall: time.Since(started)}
		if ps, err := procstat.Read(cmd.Process.Pid); err == nil {
			st.cpu, _ = ps.CPUTime()
		}
		return st
	}
	res := parseConsole(out, now)
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	res.end = stamp{wall: time.Since(started), cpu: cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("the guest did not power off in time (%w); QEMU was killed", ctx.Err())
	}
	if werr != nil {
		return res, fmt.Errorf("qemu: %w", werr)
	}
	return res, nil
}

// bootChecked boots the guest once, bounded by d, and fails the test on a
// boot that did not finish (no BWVM DONE) and on every check of want the
// guest did not pass (assertChecks). It returns what the guest reported,
// for the caller's own checks; the console is logged at the end of a test
// that failed, whichever check failed it.
func bootChecked(t *testing.T, qemu, kernel, bootImage, initrd, cmdline string, d time.Duration, want []string) *bootResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	res, err := boot(ctx, qemu, bootImage, initrd, cmdline)
	if res == nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", strings.Join(res.console, "\n"))
		}
	})
	t.Logf("guest kernel %s (booted as %s); %d console lines; /init at %v, the checks from %v, QEMU's exit at %v, deadline %v",
		kernel, bootImage, len(res.console), res.init, res.booted, res.end, d)
	if err != nil || !res.done {
		t.Errorf("boot did not finish (err %v, BWVM DONE seen: %v)", err, res.done)
	}
	assertChecks(t, res, want)
	return res
}

// parseConsole reads "BWVM <kind> <name> [rest]" lines. Kernel messages can
// share the console, so a frame is looked for anywhere in a line. now
// stamps each line as it arrives.
func parseConsole(r io.Reader, now func() stamp) *bootResult {
	res := &bootResult{checks: map[string]string{}, data: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		res.console = append(res.console, line)
		res.at = append(res.at, now())
		i := strings.Index(line, "BWVM ")
		if i < 0 {
			continue
		}
		f := strings.SplitN(line[i+len("BWVM "):], " ", 3)
		for len(f) < 3 {
			f = append(f, "")
		}
		switch f[0] {
		case "PASS", "FAIL":
			if _, dup := res.checks[f[1]]; !dup {
				res.order = append(res.order, f[1])
			}
			// A check reported twice keeps its worst verdict.
			if prev := res.checks[f[1]]; !strings.HasPrefix(prev, "FAIL") {
				res.checks[f[1]] = strings.TrimSpace(f[0] + " " + f[2])
			}
		case "DATA":
			res.data[f[1]] = f[2]
		case "DONE":
			res.done = true
		case "INIT":
			res.init = res.at[len(res.at)-1]
		case "BOOTED":
			res.booted = res.at[len(res.at)-1]
		}
	}
	return res
}

// tcgCmdline is what every guest's kernel command line ends with, the
// lessons of pkg/vm's boots under TCG (docs/vm.md) that these guests
// lacked: random.trust_cpu=on with RDRAND seeds the kernel's CRNG at once
// (without it the first Go program to ask getrandom for a key, the user
// face's `bulwark run`, waited for the jitter entropy the emulated CPU
// makes slowly: up 21 s into a boot before, 0.16 s after); no_timer_check
// skips the IO-APIC timer check that panicked one of five boots at load 9-23
// ("IO-APIC + timer doesn't work!");
// tsc=reliable, noapictimer and lpj= skip calibrations that spin the
// emulated CPU for wall-clock time, so that on a loaded host they cost
// the most CPU exactly when it is scarcest.
const tcgCmdline = " random.trust_cpu=on no_timer_check tsc=reliable noapictimer lpj=1600000"

// xzMagic starts an xz stream; Debian builds its kernels with CONFIG_KERNEL_XZ.
var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}

// uncompressedKernel extracts the ELF vmlinux from the bzImage bz into dir,
// when the kernel can boot that way (CONFIG_PVH: QEMU then jumps straight to
// the 64-bit entry). Under TCG the guest's own decompression and real-mode
// setup cost seconds: measured on the CI host, a boot to /init and power-off took
// 5.8-8.6 s from the bzImage and 2.4-4.1 s from the vmlinux. It returns ""
// when the kernel is not xz-compressed or lacks PVH; the caller then boots
// the bzImage, which always works.
func uncompressedKernel(bz, dir string) (string, error) {
	cfg, err := os.ReadFile(strings.Replace(bz, "/vmlinuz-", "/config-", 1))
	if err != nil || !bytes.Contains(cfg, []byte("\nCONFIG_PVH=y\n")) {
		return "", nil
	}
	img, err := os.ReadFile(bz)
	if err != nil {
		return "", err
	}
	i := bytes.Index(img, xzMagic)
	if i < 0 {
		return "", nil
	}
	out := filepath.Join(dir, "vmlinux")
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	// --single-stream: the bzImage carries more data after the stream.
	xz := exec.Command("xz", "-dc", "--single-stream")
	xz.Stdin, xz.Stdout = bytes.NewReader(img[i:]), f
	var stderr bytes.Buffer
	xz.Stderr = &stderr
	if err := xz.Run(); err != nil {
		return "", fmt.Errorf("xz -d of %s: %v: %s", bz, err, stderr.String())
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	head := make([]byte, 4)
	if g, err := os.Open(out); err == nil {
		_, _ = io.ReadFull(g, head)
		g.Close()
	}
	if string(head) != "\x7fELF" {
		return "", fmt.Errorf("%s: the xz stream in it is not an ELF vmlinux", bz)
	}
	return out, nil
}
