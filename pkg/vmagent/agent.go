// Package vmagent is the guest side of VM isolation: the bulwark binary
// running as /init of the VM's initramfs. It loads the few virtio modules
// Debian's kernel builds as modules, finds its virtio-serial port, reads
// the container's spec from the host, mounts the rootfs the host shares
// (virtio-fs or 9p), makes the container's own mounts inside the guest,
// and starts the payload through a child that applies the OCI process
// config (rlimits, user, capabilities, no_new_privs, seccomp) before exec.
// It relays stdio and the exit status, then powers the guest off.
//
// Threat: the VM is an extra wall, not a replacement for the others. A
// payload that exploits the guest kernel owns only the guest; without the
// agent's own confinement it would not even need a kernel bug to reach
// everything the guest can (the shared rootfs, the port), so the payload
// gets the same user, capabilities, no_new_privs and seccomp filter a
// namespace container gets. What the host trusts from the guest is
// limited by internal/vmproto: bytes for stdout/stderr and a status.
//
// Not for use on a host: Agent refuses unless it is PID 1.
package vmagent

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/pty"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/vmdns"
)

// root is where the shared rootfs is mounted inside the guest.
const root = "/rootfs"

// IsAgent tells main that this process is the guest's /init.
func IsAgent() bool { return os.Getpid() == 1 && os.Getenv(vmproto.EnvAgent) == "1" }

// Agent runs the guest and never returns: it powers the guest off.
func Agent() {
	code := agent()
	if code != 0 {
		time.Sleep(50 * time.Millisecond) // let the console show the error
	}
	unix.Sync()
	// A restart, not a power-off: microvm has no ACPI to power off with,
	// and QEMU runs with -no-reboot, so a reboot ends it on every machine.
	_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	os.Exit(code)
}

// marker records when the agent reaches each step, on the guest's boot
// clock, and sends the marks to the host once the port is open: the
// host's timing output and the bench show where a boot's time goes.
type marker struct {
	c       *vmproto.Conn
	pending [][]byte
}

func bootClock() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano())
}

func (m *marker) at(name string, t time.Duration) {
	b := vmproto.Mark(name, t)
	if m.c == nil {
		m.pending = append(m.pending, b)
		return
	}
	_ = m.c.Write(vmproto.KindMark, b)
}

func (m *marker) mark(name string) { m.at(name, bootClock()) }

func (m *marker) attach(c *vmproto.Conn) {
	m.c = c
	for _, b := range m.pending {
		_ = c.Write(vmproto.KindMark, b)
	}
	m.pending = nil
}

func agent() int {
	var m marker
	m.mark("main")
	if err := earlyMounts(); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
		return 1
	}
	m.mark("mounted")
	child, err := spawnPayload()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
		return 1
	}
	m.mark("spawned")
	if err := loadModules(vmproto.ModuleOrder); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
		return 1
	}
	m.mark("modules")
	port, err := openPort(vmproto.PortName, 10*time.Second)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
		return 1
	}
	c := vmproto.NewConn(port, port)
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
		_ = c.Write(vmproto.KindFail, []byte(err.Error()))
		return 1
	}
	m.mark("port")
	m.attach(c)
	if err := c.Write(vmproto.KindReady, nil); err != nil {
		return fail(err)
	}
	kind, data, err := c.Read()
	if err != nil {
		return fail(fmt.Errorf("reading the config: %w", err))
	}
	if kind != vmproto.KindConfig {
		return fail(fmt.Errorf("expected the config frame, got %q", kind))
	}
	var cfg vmproto.Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	if cfg.Spec == nil || cfg.Spec.Process == nil || len(cfg.Spec.Process.Args) == 0 {
		return fail(errors.New("config: no process.args"))
	}
	m.mark("config")
	if err := setupNetwork(cfg.NICs); err != nil {
		return fail(err)
	}
	// The container's loopback nameservers (Docker's 127.0.0.11) are
	// served here, before anything of the payload's can ask them.
	var dns *vmdns.Stub
	if len(cfg.DNS) > 0 {
		if dns, err = vmdns.Listen(cfg.DNS, vmdns.Port, func(b []byte) error { return c.Write(vmproto.KindDNS, b) }); err != nil {
			return fail(err)
		}
		defer dns.Close()
	}
	m.mark("network")
	if err := setupRoot(&cfg); err != nil {
		return fail(err)
	}
	m.mark("rootfs")
	code, err := child.run(c, &cfg, dns)
	if err != nil {
		return fail(err)
	}
	m.mark("exited")
	// The payload's writes must be on the host before it learns the
	// status: the host ends the VM as soon as it has it.
	unix.Sync()
	m.mark("synced")
	if err := c.Write(vmproto.KindExit, vmproto.ExitStatus(code)); err != nil {
		fmt.Fprintln(os.Stderr, "bulwark agent:", err)
	}
	return 0
}

func earlyMounts() error {
	for _, m := range []struct{ src, dst, typ string }{
		{"devtmpfs", "/dev", "devtmpfs"},
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
	} {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.src, m.dst, m.typ, unix.MS_NOSUID|unix.MS_NOEXEC, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.typ, m.dst, err)
		}
	}
	return nil
}

// loadModules inserts each module of the list; one already in the kernel
// (built in, or loaded) is fine. A module's parameters on the kernel
// command line (virtio_mmio.device=..., which QEMU's microvm adds) are
// passed as modprobe would: the kernel applies them only to built-ins.
func loadModules(list string) error {
	b, err := os.ReadFile(list)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	for _, m := range strings.Fields(string(b)) {
		f, err := os.Open(m)
		if err != nil {
			return fmt.Errorf("module %s: %w", m, err)
		}
		err = unix.FinitModule(int(f.Fd()), moduleParams(string(cmdline), m), 0)
		f.Close()
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("loading module %s: %w", m, err)
		}
	}
	return nil
}

// moduleParams returns the "NAME.KEY=VALUE" words of cmdline for the
// module at path, as "KEY=VALUE ...".
func moduleParams(cmdline, path string) string {
	name, _, _ := strings.Cut(filepath.Base(path), ".ko")
	name = strings.ReplaceAll(name, "-", "_")
	var out []string
	for _, w := range strings.Fields(cmdline) {
		if p, ok := strings.CutPrefix(w, name+"."); ok {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// openPort waits for the virtio-serial port named name: the console driver
// adds ports when the host's control message arrives, after the module
// has loaded.
func openPort(name string, wait time.Duration) (*os.File, error) {
	deadline := time.Now().Add(wait)
	for {
		ds, _ := os.ReadDir("/sys/class/virtio-ports")
		for _, d := range ds {
			b, err := os.ReadFile(filepath.Join("/sys/class/virtio-ports", d.Name(), "name"))
			if err != nil || strings.TrimSpace(string(b)) != name {
				continue
			}
			f, err := os.OpenFile(filepath.Join("/dev", d.Name()), os.O_RDWR, 0)
			if err == nil {
				return f, nil
			}
			if !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("virtio-serial port %s: %w", name, err)
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no virtio-serial port named %s after %v", name, wait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// payloadProc is the child that becomes the payload. It is started as
// soon as the agent runs, so that its Go runtime starts (hundreds of ms
// under TCG) while the agent waits on the host for the port, the config
// and the rootfs, instead of after them; it waits for the config on fd 3.
type payloadProc struct {
	cmd            *exec.Cmd
	config         *os.File // the config goes here
	stdin          *os.File // the payload's stdin (write end)
	stdout, stderr *os.File // read ends
}

func spawnPayload() (*payloadProc, error) {
	var ends [8]*os.File // read, write of config, stdin, stdout, stderr
	for i := 0; i < len(ends); i += 2 {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range ends[:i] {
				f.Close()
			}
			return nil, err
		}
		ends[i], ends[i+1] = r, w
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-payload"}
	cmd.Env = []string{vmproto.EnvPayload + "=1"}
	cmd.ExtraFiles = []*os.File{ends[0]}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = ends[2], ends[5], ends[7]
	err := cmd.Start()
	for _, i := range []int{0, 2, 5, 7} { // the child's ends
		ends[i].Close()
	}
	if err != nil {
		for _, i := range []int{1, 3, 4, 6} {
			ends[i].Close()
		}
		return nil, fmt.Errorf("starting the payload: %w", err)
	}
	return &payloadProc{cmd: cmd, config: ends[1], stdin: ends[3], stdout: ends[4], stderr: ends[6]}, nil
}

// run hands the child its config, relays its stdio (and exec sessions)
// until it exits and returns the shell-style status.
func (p *payloadProc) run(c *vmproto.Conn, cfg *vmproto.Config, dns *vmdns.Stub) (int, error) {
	var copies sync.WaitGroup
	var stdin io.WriteCloser = p.stdin
	var slaveOpen *os.File
	if cfg.Spec.Process.Terminal {
		// The child started before the config came: it opens the
		// pty's slave by path once it has chrooted.
		master, slave, name, err := openPtyByName(cfg.Spec.Process.ConsoleSize)
		if err != nil {
			return 0, err
		}
		defer master.Close()
		// Held until the payload exits: a master whose slave is open
		// nowhere reads EIO at once, before the child has opened it.
		defer slave.Close()
		slaveOpen = slave
		cfg.TTY = name
		stdin = keepOpen{master}
		copies.Add(1)
		go func() {
			defer copies.Done()
			// EIO ends it: every slave fd is closed.
			_, _ = io.Copy(vmproto.Stream{C: c, Kind: vmproto.KindStdout}, master)
		}()
	}
	for _, o := range []struct {
		f    *os.File
		kind byte
	}{{p.stdout, vmproto.KindStdout}, {p.stderr, vmproto.KindStderr}} {
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(vmproto.Stream{C: c, Kind: o.kind}, o.f)
			o.f.Close()
		}()
	}
	go func() {
		_ = json.NewEncoder(p.config).Encode(cfg)
		p.config.Close()
	}()
	ss := &sessions{c: c, base: cfg, procs: map[uint32]*session{}}
	go relayInput(c, stdin, p.cmd.Process, ss, dns)
	err := p.cmd.Wait()
	if slaveOpen != nil {
		slaveOpen.Close()
	}
	// Everything the payload wrote reaches the host before its status
	// (a grandchild still holding the terminal is not waited for long).
	done := make(chan struct{})
	go func() { copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	return status(err)
}

// startChild starts the agent's child that applies cfg's process config
// and execs it: the payload, or a process exec'd into the container. With
// process.terminal its stdio is a pty of the container's own devpts, whose
// master's bytes go to stdout; the returned wait waits for the child and
// for its output to be sent.
func startChild(cfg *vmproto.Config, stdout, stderr io.Writer) (wait func() error, p *os.Process, stdin io.WriteCloser, err error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, err
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-payload"}
	cmd.Env = []string{vmproto.EnvPayload + "=1"}
	cmd.ExtraFiles = []*os.File{pr}
	var master *os.File
	if cfg.Spec.Process.Terminal {
		var slave *os.File
		if master, slave, _, err = openPty(cfg.Spec.Process.ConsoleSize); err != nil {
			pr.Close()
			pw.Close()
			return nil, nil, nil, err
		}
		defer slave.Close()
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		stdin = keepOpen{master}
	} else {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, nil, nil, err
		}
		cmd.Stdout, cmd.Stderr = stdout, stderr
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		if master != nil {
			master.Close()
		}
		return nil, nil, nil, fmt.Errorf("starting the payload: %w", err)
	}
	pr.Close()
	go func() {
		_ = json.NewEncoder(pw).Encode(cfg)
		pw.Close()
	}()
	if master == nil {
		return cmd.Wait, cmd.Process, stdin, nil
	}
	copied := make(chan struct{})
	go func() {
		// EIO ends it: every slave fd is closed.
		_, _ = io.Copy(stdout, master)
		close(copied)
	}()
	return func() error {
		err := cmd.Wait()
		select {
		case <-copied:
		case <-time.After(2 * time.Second): // a grandchild holds the slave
		}
		master.Close()
		return err
	}, cmd.Process, stdin, nil
}

// keepOpen is a pty master as the payload's input: the end of the
// host's input is not a hangup of the terminal.
type keepOpen struct{ *os.File }

func (keepOpen) Close() error { return nil }

// openPtyByName opens a pty in the container's devpts and returns its
// master, its slave and the slave's path inside the rootfs, for the
// payload's child to open.
func openPtyByName(size *specs.Box) (master, slave *os.File, name string, err error) {
	if _, err := os.Stat(filepath.Join(root, "dev/pts/ptmx")); err != nil {
		return nil, nil, "", errors.New("process.terminal: the container has no devpts mount at /dev/pts to make its terminal in")
	}
	return openPty(size)
}

// openPty opens a pty in the container's own devpts (the spec's
// /dev/pts, mounted newinstance), so that its name resolves inside the
// rootfs; the guest's initial devpts when the spec has none.
func openPty(size *specs.Box) (master, slave *os.File, name string, err error) {
	ptmx := filepath.Join(root, "dev/pts/ptmx")
	if _, err := os.Stat(ptmx); err != nil {
		ptmx = "/dev/ptmx"
		if err := os.MkdirAll("/dev/pts", 0o755); err != nil {
			return nil, nil, "", err
		}
		if err := unix.Mount("devpts", "/dev/pts", "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "ptmxmode=0666,mode=0620"); err != nil && !errors.Is(err, unix.EBUSY) {
			return nil, nil, "", fmt.Errorf("terminal: mount devpts: %w", err)
		}
	}
	if master, slave, name, err = pty.Open(ptmx); err != nil {
		return nil, nil, "", fmt.Errorf("terminal: %w", err)
	}
	if size != nil && size.Height > 0 && size.Width > 0 {
		_ = unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)})
	}
	return master, slave, name, nil
}

// status is a child's shell-style status from its Wait.
func status(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	default:
		return 0, err
	}
}

// relayInput feeds the payload's stdin, delivers signals, passes exec
// sessions' frames on and the host's DNS answers to dns (nil: no
// loopback nameserver to serve) until the host closes the port.
func relayInput(c *vmproto.Conn, stdin io.WriteCloser, p *os.Process, ss *sessions, dns *vmdns.Stub) {
	w := bufio.NewWriter(stdin)
	for {
		kind, data, err := c.Read()
		if err != nil {
			stdin.Close()
			return
		}
		switch kind {
		case vmproto.KindStdin:
			_, _ = w.Write(data)
			_ = w.Flush()
		case vmproto.KindStdinEOF:
			_ = w.Flush()
			stdin.Close()
		case vmproto.KindSignal:
			if len(data) == 1 {
				_ = p.Signal(syscall.Signal(data[0]))
			}
		case vmproto.KindResize:
			resizeTTY(stdin, data)
		case vmproto.KindSession:
			ss.handle(data)
		case vmproto.KindDNS:
			if dns != nil {
				dns.Answer(data)
			}
		}
	}
}

// sessions are the processes exec'd into the guest, each under the id
// the host gave it: started as the payload is (the same child, the
// container's spec with the exec'd process), their stdio and status sent
// back as session frames.
type sessions struct {
	c     *vmproto.Conn
	base  *vmproto.Config
	mu    sync.Mutex
	procs map[uint32]*session
}

type session struct {
	stdin io.WriteCloser
	p     *os.Process
}

func (ss *sessions) handle(data []byte) {
	id, kind, d, err := vmproto.ParseSession(data)
	if err != nil {
		return
	}
	ss.mu.Lock()
	s := ss.procs[id]
	ss.mu.Unlock()
	switch kind {
	case vmproto.KindConfig:
		if s == nil {
			ss.start(id, d)
		}
	case vmproto.KindStdin:
		if s != nil {
			_, _ = s.stdin.Write(d)
		}
	case vmproto.KindStdinEOF:
		if s != nil {
			s.stdin.Close()
		}
	case vmproto.KindSignal:
		if s != nil && len(d) == 1 {
			_ = s.p.Signal(syscall.Signal(d[0]))
		}
	case vmproto.KindResize:
		if s != nil {
			resizeTTY(s.stdin, d)
		}
	case vmproto.KindProcs:
		b, err := json.Marshal(guestProcs("/proc"))
		if err == nil && len(b) > vmproto.MaxFrame-5 {
			err = fmt.Errorf("ps: %d bytes of processes", len(b))
		}
		if err != nil {
			_ = ss.c.Write(vmproto.KindSession, vmproto.Session(id, vmproto.KindFail, []byte(err.Error())))
			return
		}
		_ = ss.c.Write(vmproto.KindSession, vmproto.Session(id, vmproto.KindProcs, b))
	}
}

// resizeTTY gives a process's pty the size d (vmproto.Resize) when the
// process has a terminal, whose master is then its input: the kernel
// tells the pty's foreground with SIGWINCH. Only such a process has one
// to resize.
func resizeTTY(stdin io.WriteCloser, d []byte) {
	k, ok := stdin.(keepOpen)
	if !ok {
		return
	}
	if rows, cols, err := vmproto.ParseResize(d); err == nil && rows > 0 && cols > 0 {
		_ = unix.IoctlSetWinsize(int(k.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}
}

func (ss *sessions) start(id uint32, process []byte) {
	fail := func(err error) {
		_ = ss.c.Write(vmproto.KindSession, vmproto.Session(id, vmproto.KindFail, []byte(err.Error())))
	}
	var p specs.Process
	if err := json.Unmarshal(process, &p); err != nil {
		fail(fmt.Errorf("exec: process: %w", err))
		return
	}
	if len(p.Args) == 0 {
		fail(errors.New("exec: process.args: empty"))
		return
	}
	spec := *ss.base.Spec
	spec.Process = &p
	cfg := *ss.base
	cfg.Spec = &spec
	wait, proc, stdin, err := startChild(&cfg, vmproto.SessionStream{C: ss.c, ID: id, Kind: vmproto.KindStdout}, vmproto.SessionStream{C: ss.c, ID: id, Kind: vmproto.KindStderr})
	if err != nil {
		fail(err)
		return
	}
	ss.mu.Lock()
	ss.procs[id] = &session{stdin: stdin, p: proc}
	ss.mu.Unlock()
	go func() {
		code, err := status(wait())
		ss.mu.Lock()
		delete(ss.procs, id)
		ss.mu.Unlock()
		if err != nil {
			fail(err)
			return
		}
		_ = ss.c.Write(vmproto.KindSession, vmproto.Session(id, vmproto.KindExit, vmproto.ExitStatus(code)))
	}()
}

// setupRoot mounts the shared rootfs on /rootfs and the container's own
// mounts inside it. Targets resolve inside the rootfs (securejoin): its
// symlinks are the payload's, not the agent's.
func setupRoot(cfg *vmproto.Config) error {
	s := cfg.Spec
	readonly := s.Root != nil && s.Root.Readonly
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if readonly {
		flags |= unix.MS_RDONLY
	}
	switch cfg.FS {
	case "virtiofs":
		if err := unix.Mount(vmproto.MountTag, root, "virtiofs", flags, ""); err != nil {
			return fmt.Errorf("mounting the rootfs over virtio-fs: %w", err)
		}
	case "9p":
		if err := unix.Mount(vmproto.MountTag, root, "9p", flags, "trans=virtio,version=9p2000.L,msize=524288,access=any"); err != nil {
			return fmt.Errorf("mounting the rootfs over 9p: %w", err)
		}
	default:
		return fmt.Errorf("config: unknown rootfs sharing %q", cfg.FS)
	}
	for i, m := range s.Mounts {
		if err := mountOne(m); err != nil {
			return fmt.Errorf("config.json: mounts[%d] (%s): %w", i, m.Destination, err)
		}
	}
	if s.Linux != nil {
		for _, p := range s.Linux.MaskedPaths {
			if err := mask(p); err != nil {
				return fmt.Errorf("config.json: linux.maskedPaths %s: %w", p, err)
			}
		}
		for _, p := range s.Linux.ReadonlyPaths {
			if err := readonlyPath(p); err != nil {
				return fmt.Errorf("config.json: linux.readonlyPaths %s: %w", p, err)
			}
		}
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("config.json: hostname: %w", err)
		}
	}
	return nil
}

var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"strictatime": unix.MS_STRICTATIME, "relatime": unix.MS_RELATIME, "noatime": unix.MS_NOATIME,
}

func parseOptions(opts []string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			flags |= f
			continue
		}
		switch o {
		case "rw", "private", "rprivate", "slave", "rslave", "shared", "rshared", "bind", "rbind", "exec", "suid", "dev", "atime":
			continue
		}
		data = append(data, o)
	}
	return flags, strings.Join(data, ",")
}

// mountOne makes one of the spec's mounts that can exist in the guest.
// Bind mounts name host paths the guest cannot see (the person face's
// /etc files and device nodes); /dev is a tmpfs with the standard nodes.
func mountOne(m specs.Mount) error {
	typ := m.Type
	switch typ {
	case "proc", "sysfs", "tmpfs", "devpts", "mqueue":
	default:
		return nil
	}
	dst, err := securejoin.SecureJoin(root, m.Destination)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	flags, data := parseOptions(m.Options)
	if typ == "sysfs" {
		flags |= unix.MS_RDONLY
	}
	if typ == "devpts" {
		data = "newinstance,ptmxmode=0666,mode=0620"
	}
	if err := unix.Mount(typ, dst, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s: %w", typ, err)
	}
	if m.Destination == "/dev" && typ == "tmpfs" {
		return devNodes(dst)
	}
	return nil
}

// devNodes makes the standard character devices in the container's /dev.
func devNodes(dev string) error {
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}} {
		p := filepath.Join(dev, d.name)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		_ = unix.Chmod(p, 0o666)
	}
	for name, target := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		_ = os.Symlink(target, filepath.Join(dev, name))
	}
	return nil
}

func mask(p string) error {
	dst, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return err
	}
	fi, err := os.Stat(dst)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return unix.Mount("tmpfs", dst, "tmpfs", unix.MS_RDONLY, "size=0")
	}
	return unix.Mount("/dev/null", dst, "", unix.MS_BIND, "")
}

func readonlyPath(p string) error {
	dst, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dst); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Mount(dst, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	return unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
}
