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
}

// boot runs the guest once and collects its framed lines. The guest has no
// network device (-nic none) and no disk: its only input is the initramfs,
// its only output the serial console. The context bounds the boot; QEMU is
// killed when it expires or when the test fails, so nothing outlives it.
// extra is appended to QEMU's arguments (the systemd test's read-only 9p
// export of the host root).
func boot(ctx context.Context, qemu, kernel, initrd string, cmdline string, extra ...string) (*bootResult, error) {
	args := []string{
		"-accel", "tcg", "-m", "1024", "-smp", "2",
		"-display", "none", "-monitor", "none", "-serial", "stdio",
		"-nic", "none", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", cmdline,
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
	t.Logf("guest kernel %s (booted as %s); %d console lines", kernel, bootImage, len(res.console))
	if err != nil || !res.done {
		t.Errorf("boot did not finish (err %v, BWVM DONE seen: %v)", err, res.done)
	}
	assertChecks(t, res, want)
	return res
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
