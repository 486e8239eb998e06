package vmcontainer

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/rawtty"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/vm"
	"github.com/bulwark-sec/bulwark/pkg/vmdns"
	"github.com/bulwark-sec/bulwark/pkg/vmnet"
)

// IsMonitor tells main that this process is a VM container's init.
func IsMonitor() bool {
	return os.Getenv(envSwitch) == "1" && len(os.Args) > 0 && os.Args[0] == inBinary
}

// forwarded are the signals the container's init passes to the payload in
// the guest (kill SIGTERM reaches the payload); SIGKILL, which cannot be
// caught, ends the init and with it QEMU and the VM.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGALRM}

// Monitor runs the VM as the container's init and exits with the
// payload's status; it never returns.
func Monitor() {
	code, err := monitor()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulwark: vm:", err)
		if code <= 0 {
			code = 125
		}
	}
	os.Exit(code)
}

func monitor() (int, error) {
	b, err := os.ReadFile(inConfig)
	if err != nil {
		return -1, err
	}
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return -1, fmt.Errorf("%s: %w", inConfig, err)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	// A terminal the engine gave the container carries the payload's
	// bytes as they are: the guest has the line discipline.
	if restore := rawTerminal(0); restore != nil {
		defer restore()
	}
	// The engine resizes the master it holds (docker run -t, a person's
	// window): its sizes reach the payload's pty in the guest, followed
	// as an exec'd process's are.
	var resize chan []byte
	if p := c.Spec.Process; p != nil && p.Terminal {
		resize = make(chan []byte, 1)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		done := make(chan struct{})
		defer close(done)
		var first []byte
		if sz := p.ConsoleSize; sz != nil {
			first = vmproto.Resize(uint16(sz.Height), uint16(sz.Width))
		}
		send := func(kind byte, data []byte) {
			if kind != vmproto.KindResize {
				return
			}
			select {
			case resize <- data:
			case <-done:
			}
		}
		go forwardSignals(send, winch, terminalSize(0), first, resizePoll, done)
	}
	// exec: a socket in the run directory, which the host reaches in the
	// container's state directory.
	es := newExecServer()
	l, err := net.Listen("unix", filepath.Join(inDir, ExecSocket))
	if err != nil {
		return -1, fmt.Errorf("exec socket: %w", err)
	}
	defer l.Close()
	go es.serve(l)
	// The taps the runtime made (Network) came through the init; the
	// container's interfaces they carry are described here, in the
	// container's network namespace, without any capability.
	taps, err := vmnet.InheritedTaps()
	if err != nil {
		return -1, err
	}
	nics, err := vmnet.Describe(taps)
	if err != nil {
		return -1, err
	}
	initrd, agentRoot := inInitrd, ""
	if c.AgentRoot {
		initrd, agentRoot = "", inAgent
	}
	// A loopback nameserver (Docker's 127.0.0.11) is this namespace's,
	// not the guest's: its queries come here and are asked from here.
	// The list is read now, before the guest can write the file, and is
	// all the forwarder will ever talk to. A resolv.conf that cannot be
	// read gets no forwarding: the guest's resolver cannot read it either.
	var dns vm.DNSForwarder
	if ns, err := vmdns.ReadNameservers(inRootfs); err == nil && len(ns) > 0 {
		f := vmdns.NewForwarder(ns)
		defer f.Close()
		dns = f
	}
	return vm.Run(&vm.Options{
		DNS:  dns,
		NICs: nics, Taps: taps,
		SessionIn: es.in, SessionOut: es.out,
		Spec: c.Spec, Rootfs: inRootfs, Accel: c.Accel,
		Kernel: inKernel, Initrd: initrd, AgentRoot: agentRoot, MemoryMiB: c.MemoryMiB, Machine: c.Machine, Seccomp: c.Seccomp,
		Dir: inRun, InContainer: true, FS: "9p",
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Signals: sigs, Resize: resize,
	})
}

// rawTerminal puts fd in raw mode if it is a terminal and returns what
// restores it.
func rawTerminal(fd int) func() {
	old := rawtty.Make(fd)
	if old == nil {
		return nil
	}
	return func() { rawtty.Restore(fd, old) }
}
