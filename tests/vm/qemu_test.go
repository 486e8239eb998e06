package vm

import (
	"bufio"
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
)

// guestKernel returns the kernel to boot: $BULWARK_VM_KERNEL, or the newest
// /boot/vmlinuz-* (scripts/install-vm.sh installs Debian's linux-image-amd64).
// The compressed bzImage is booted directly; under TCG it decompresses in
// well under a second, so the uncompressed vmlinux buys nothing.
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
}

// boot runs the guest once and collects its framed lines. The guest has no
// network device (-nic none) and no disk: its only input is the initramfs,
// its only output the serial console. The context bounds the boot; QEMU is
// killed when it expires or when the test fails, so nothing outlives it.
func boot(ctx context.Context, qemu, kernel, initrd string, cmdline string) (*bootResult, error) {
	args := []string{
		"-accel", "tcg", "-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", cmdline,
	}
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
	res := parseConsole(out)
	_, _ = io.Copy(io.Discard, out)
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return res, fmt.Errorf("the guest did not power off in time (%w); QEMU was killed", ctx.Err())
	}
	if werr != nil {
		return res, fmt.Errorf("qemu: %w", werr)
	}
	return res, nil
}

// parseConsole reads "BWVM <kind> <name> [rest]" lines. Kernel messages can
// share the console, so a frame is looked for anywhere in a line.
func parseConsole(r io.Reader) *bootResult {
	res := &bootResult{checks: map[string]string{}, data: map[string]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		res.console = append(res.console, line)
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
		}
	}
	return res
}
