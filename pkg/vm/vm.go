// Package vm runs a container's payload in its own virtual machine: QEMU
// booting a stock Debian kernel straight into an initramfs whose /init is
// this very binary in agent mode (pkg/vmagent), with the container's
// rootfs shared over virtio-fs (virtiofsd) or 9p, and stdio, signals and
// the exit status over one virtio-serial port (internal/vmproto).
//
// Threat: a kernel bug reachable by one syscall ends every namespace
// wall at once. In a VM the payload's syscalls reach the guest kernel;
// to reach the host it needs a bug in the VMM's device emulation (QEMU's
// virtio-serial, virtio-fs or 9p, and under TCG the emulator itself)
// instead. The agent still applies the container's user, capabilities,
// no_new_privs and seccomp inside the guest: the VM is an extra wall.
//
// When not to use it: under TCG (no real KVM) the emulator is a large
// attack surface and not a security boundary of the same strength, and
// every instruction is emulated: Accel says which one a run gets.
package vm

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/procstat"
	"github.com/bulwark-sec/bulwark/internal/tailbuf"
	"github.com/bulwark-sec/bulwark/internal/vmproto"
	"github.com/bulwark-sec/bulwark/pkg/seccomp"
)

// Paths of the VMM's parts; Debian's qemu-system-x86 ships them all.
const (
	DefaultQEMU      = "qemu-system-x86_64"
	DefaultVirtiofsd = "/usr/lib/qemu/virtiofsd"
	DefaultCacheDir  = "/var/cache/bulwark/vm"
	qboot            = "/usr/share/qemu/qboot.rom"
)

// ErrNoQEMU: QEMU is not installed.
var ErrNoQEMU = errors.New("qemu-system-x86_64 not found (apt-get install qemu-system-x86, or scripts/install-vm.sh)")

// ErrAgent: the guest ended without reporting the payload's exit.
var ErrAgent = errors.New("the VM ended before the payload's exit status arrived")

// Options is one payload's run in a VM.
type Options struct {
	Spec   *specs.Spec
	Rootfs string // the directory shared into the guest as its root

	Stdin          io.Reader // nil: the payload's stdin is closed
	Stdout, Stderr io.Writer
	Signals        <-chan os.Signal // forwarded to the payload
	// Resize carries new sizes of the payload's terminal (vmproto.Resize
	// payloads) for its pty in the guest; the first is the spec's
	// process.consoleSize.
	Resize <-chan []byte

	// Machine is "microvm" (default) or "pc"; FS "virtiofs", "9p" or ""
	// (virtio-fs when virtiofsd is installed). Accel "kvm" or "tcg"; ""
	// asks Probe. $BULWARK_VM_MACHINE and $BULWARK_VM_FS override.
	Machine, FS, Accel string
	QEMU, Virtiofsd    string // "" for the defaults
	CacheDir           string // kernel and initramfs cache; "" for DefaultCacheDir
	Agent              string // the static binary that becomes /init; "" for our own
	// Kernel and Initrd, when set, are the boot assets Assets made
	// beforehand (a VM container's init cannot write the host's cache).
	// Initrd "" with Kernel set boots the agent from AgentRoot instead.
	Kernel, Initrd string
	// AgentRoot is the directory QEMU shares read-only over 9p as the
	// guest's root for a kernel that mounts it itself (Assets returns no
	// initramfs for one): the agent binary as init and the empty mount
	// points of AgentRootDirs. "" makes one in the run directory.
	AgentRoot string
	// MemoryMiB, when set, is the guest's RAM instead of memoryMiB's.
	MemoryMiB int64
	// Dir, when set, is the run's directory (sockets),
	// kept by its owner; "" makes and removes one under $TMPDIR.
	Dir string
	// SessionIn carries exec'd processes' frames (vmproto.Session) to
	// the agent once it runs; SessionOut gets the agent's.
	SessionIn  <-chan []byte
	SessionOut func([]byte)
	// NICs are the guest's network interfaces, each carried by the tap
	// of the same index in Taps (pkg/vmnet); QEMU inherits the taps.
	NICs []vmproto.NIC
	Taps []*os.File
	// Seccomp, when set, is Spec's linux.seccomp compiled beforehand
	// (seccomp.Compile): a VM container's monitor cannot write the host's
	// cache, and compiling it there cost every run libseccomp's ~10 ms.
	Seccomp []byte
	// DNS, when set, serves the container's loopback nameservers to the
	// guest (pkg/vmdns): the agent listens on DNS.Servers() and sends
	// their queries here.
	DNS DNSForwarder
	// InContainer: QEMU runs as a container's init (pkg/vmcontainer),
	// whose rootfs share is a read-only bind already when it must be.
	InContainer bool
	Warnf       func(format string, args ...any)
	// Marks, when set, is called at each step of the boot (bench, tests)
	// with the host's time since Run began; the guest agent's steps
	// ("guest main", "guest rootfs", ...) also carry the guest's boot
	// clock (0 for the host's own). $BULWARK_VM_TIMING=1 prints them.
	Marks func(step string, host, guest time.Duration)

	t0      time.Time
	qemuPid int // for the timing output's QEMU CPU time
}

// DNSForwarder answers the guest's DNS queries (vmproto.KindDNS frames).
type DNSForwarder interface {
	// Servers are the addresses the agent listens on (vmproto.Config.DNS).
	Servers() []string
	// Handle takes one query frame and must return at once; the answer
	// frame goes to reply, from any goroutine.
	Handle(frame []byte, reply func([]byte))
}

func (o *Options) mark(step string) { o.markGuest(step, 0) }

func (o *Options) markGuest(step string, guest time.Duration) {
	host := time.Since(o.t0)
	if o.Marks != nil {
		o.Marks(step, host, guest)
	}
	if os.Getenv("BULWARK_VM_TIMING") == "1" {
		g := ""
		if guest > 0 {
			g = fmt.Sprintf(" (guest clock %v)", guest.Round(time.Millisecond))
		}
		// QEMU's own CPU time so far: on a loaded host the wall clock
		// says how busy the host was, this what each step cost.
		if cpu, ok := cpuTime(o.qemuPid); ok {
			g += fmt.Sprintf(" (qemu cpu %v)", cpu.Round(time.Millisecond))
		}
		fmt.Fprintf(os.Stderr, "vm: %s at %v%s\n", step, host.Round(time.Millisecond), g)
	}
}

// Run boots the VM, runs the payload to its end and removes everything
// the run made (QEMU, virtiofsd, sockets, mounts); it returns the
// payload's status (128+N for a signal).
func Run(o *Options) (int, error) {
	v, err := start(o)
	if err != nil {
		return -1, err
	}
	defer v.stop()
	code, err := v.wait()
	v.stop()
	o.mark("stopped")
	return code, err
}

type machine struct {
	o         *Options
	dir       string
	qemu      *exec.Cmd
	fsd       *exec.Cmd
	conn      *vmproto.Conn
	sock      *os.File
	qerr      *tailbuf.Buffer // QEMU's and virtiofsd's stderr, bounded
	console   *tailbuf.Buffer // the end of the guest's serial console
	conTheirs *os.File        // QEMU's end of the console
	qdone     chan struct{}
	roMount   string
	keepDir   bool
	seccomp   []byte // the spec's filter, compiled for the agent
	stopOnce  sync.Once
}

func lookup(name, def string) string {
	if name == "" {
		name = def
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return ""
}

func start(o *Options) (_ *machine, err error) {
	o.t0 = time.Now()
	if o.Spec == nil || o.Spec.Process == nil {
		return nil, errors.New("vm: no process in the spec")
	}
	qemu := lookup(o.QEMU, DefaultQEMU)
	if qemu == "" {
		return nil, ErrNoQEMU
	}
	if m := os.Getenv("BULWARK_VM_MACHINE"); m != "" {
		o.Machine = m
	}
	if f := os.Getenv("BULWARK_VM_FS"); f != "" {
		o.FS = f
	}
	kernel, initrd := o.Kernel, o.Initrd
	if kernel == "" {
		var err error
		if kernel, initrd, err = Assets(o); err != nil {
			return nil, err
		}
	}
	if o.Machine == "" {
		o.Machine = "pc"
	}
	// Machine may carry QEMU machine options after a comma, for
	// measurements ("microvm,pit=on").
	mname, mextra, _ := strings.Cut(o.Machine, ",")
	if mname != "microvm" && mname != "pc" {
		return nil, fmt.Errorf("vm: machine %q: want microvm or pc", o.Machine)
	}
	virtiofsd := lookup(o.Virtiofsd, DefaultVirtiofsd)
	switch o.FS {
	case "":
		// virtio-fs when virtiofsd is installed, except on microvm: there
		// the guest's first FUSE request over vhost-user-fs on virtio-mmio
		// never completes (QEMU 7.2, measured here), so 9p it is.
		o.FS = "9p"
		if virtiofsd != "" && mname != "microvm" {
			o.FS = "virtiofs"
		}
	case "virtiofs":
		if virtiofsd == "" {
			return nil, fmt.Errorf("vm: virtio-fs asked for, but %s is not installed (qemu-system-x86 ships it); 9p needs nothing more", DefaultVirtiofsd)
		}
	case "9p":
	default:
		return nil, fmt.Errorf("vm: rootfs sharing %q: want virtiofs or 9p", o.FS)
	}
	if len(o.NICs) != len(o.Taps) {
		return nil, fmt.Errorf("vm: %d NICs for %d taps", len(o.NICs), len(o.Taps))
	}
	if fi, err := os.Stat(o.Rootfs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("vm: rootfs %s: not a directory (%v)", o.Rootfs, err)
	}
	if o.Accel == "" {
		p := Probe()
		o.Accel = p.Accel
	}
	bpf := o.Seccomp
	if bpf == nil {
		if bpf, err = Filter(o); err != nil {
			return nil, err
		}
	}
	o.mark("assets")

	v := &machine{o: o, qdone: make(chan struct{}), seccomp: bpf, qerr: tailbuf.New(maxQEMUErr), console: tailbuf.New(maxConsole)}
	defer func() {
		if err != nil {
			v.stop()
		}
	}()
	if o.Dir != "" {
		v.dir, v.keepDir = o.Dir, true
	} else {
		sweepStale(os.TempDir())
		if v.dir, err = os.MkdirTemp("", fmt.Sprintf("bulwark-vm-%d-", os.Getpid())); err != nil {
			return nil, err
		}
	}
	var bootArgs []string
	bootCmdline := ""
	if initrd != "" {
		bootArgs = []string{"-initrd", initrd}
	} else {
		agentRoot := o.AgentRoot
		if agentRoot == "" {
			if agentRoot, err = v.agentRoot(); err != nil {
				return nil, err
			}
		}
		bootArgs, bootCmdline = agentRootBoot(agentRoot, mname == "microvm")
	}
	readonly := o.Spec.Root != nil && o.Spec.Root.Readonly
	src, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return nil, err
	}
	var fsArgs []string
	dev := map[bool]string{true: "device", false: "pci"}[mname == "microvm"]
	switch o.FS {
	case "virtiofs":
		if readonly && !o.InContainer {
			// In a container the share is a read-only bind already.
			// virtiofsd has no read-only export: it serves a read-only
			// bind mount, kept until the guest runs (virtiofsd has its
			// own copy by then), so a guest kernel bug cannot write.
			if src, err = v.readonlyView(src); err != nil {
				return nil, err
			}
		}
		sock := filepath.Join(v.dir, "fs.sock")
		v.fsd = exec.Command(virtiofsd, "--socket-path="+sock, "-o", "source="+src, "-o", "cache=none", "-o", "sandbox=namespace", "-o", "log_level=err")
		v.fsd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		v.fsd.Stderr = v.qerr
		if err := v.fsd.Start(); err != nil {
			return nil, fmt.Errorf("vm: starting %s: %w", virtiofsd, err)
		}
		if err := waitSocket(sock, v.fsd, 5*time.Second); err != nil {
			return nil, fmt.Errorf("vm: %s: %w: %s", virtiofsd, err, strings.TrimSpace(v.qerr.String()))
		}
		o.mark("virtiofsd")
		fsArgs = []string{
			"-chardev", "socket,id=fs,path=" + sock,
			"-device", "vhost-user-fs-" + dev + ",chardev=fs,tag=" + vmproto.MountTag,
		}
	case "9p":
		ro := ""
		if readonly {
			ro = ",readonly=on"
		}
		fsArgs = []string{
			"-fsdev", "local,id=fs,path=" + qemuEscape(src) + ",security_model=passthrough" + ro,
			"-device", "virtio-9p-" + dev + ",fsdev=fs,mount_tag=" + vmproto.MountTag,
		}
	}

	if err := v.consoleReader(); err != nil {
		return nil, err
	}
	defer v.conTheirs.Close()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	v.sock = os.NewFile(uintptr(fds[0]), "agent")
	theirs := os.NewFile(uintptr(fds[1]), "agent-qemu")
	defer theirs.Close()
	v.conn = vmproto.NewConn(v.sock, v.sock)

	mem := memoryMiB(o.Spec)
	if o.MemoryMiB > 0 {
		mem = o.MemoryMiB
	}
	mopt := mname
	if mname == "microvm" {
		// No legacy devices the agent does not use. A kernel with
		// command-line virtio-mmio devices needs no ACPI: QEMU names the
		// devices on the command line, and the kernel skips the tables.
		// The RTC stays: without it the guest kernel's boot-time read of
		// the CMOS clock sees "update in progress" for ever and gives up
		// only after a second of spinning when its delays run on the TSC
		// (in about half the boots under TCG, docs/vm.md), and the guest
		// would have no time of day.
		mopt += ",x-option-roms=off"
	}
	if mextra != "" {
		mopt += "," + mextra
	}
	var memArgs []string
	if o.FS == "virtiofs" {
		// vhost-user needs the guest's memory shared with virtiofsd.
		mopt += ",memory-backend=mem"
		memArgs = []string{"-object", fmt.Sprintf("memory-backend-memfd,id=mem,size=%dM,share=on", mem)}
	}
	quiet := "quiet loglevel=1"
	if os.Getenv("BULWARK_VM_DEBUG") == "1" {
		quiet = "loglevel=7 earlyprintk=serial"
	}
	// random.trust_cpu: the CPU's RDRAND (under TCG QEMU serves it from
	// the host's getrandom) seeds the guest's CRNG at once; without it a
	// kernel with no other entropy source holds the agent's Go runtime in
	// getrandom for over a minute under TCG.
	cmdline := "console=ttyS0 " + quiet + " panic=-1 reboot=t tsc=reliable no_timer_check i8042.noaux i8042.nopnp i8042.dumbkbd cryptomgr.notests random.trust_cpu=on " + vmproto.EnvAgent + "=1" + bootCmdline
	if o.Accel == "tcg" {
		cmdline += tcgCmdline
	}
	var biosArgs []string
	if mname == "pc" {
		// qboot instead of SeaBIOS: it sets up the PC and jumps to the
		// kernel without probing disks or waiting for a boot menu.
		// $BULWARK_VM_BIOS=seabios keeps QEMU's default (measurements).
		if _, err := os.Stat(qboot); err == nil && os.Getenv("BULWARK_VM_BIOS") != "seabios" {
			biosArgs = []string{"-bios", qboot}
		}
		cmdline += " pci=lastbus=0"
	}
	args := []string{
		"-M", mopt, "-accel", o.Accel, "-cpu", "qemu64,+rdrand", "-m", fmt.Sprintf("%dM", mem), "-smp", fmt.Sprint(vcpus(o.Spec)),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		// QEMU's own seccomp filter: no obsolete calls, no setuid, no
		// fork or exec, no scheduler or resource changes, so that a
		// guest escaping into QEMU's device models gets less of the host.
		"-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
		// The console goes to this process, which keeps its end in
		// memory: a file would grow on the host's disk as fast as a
		// hostile guest writes to its serial port.
		"-chardev", fmt.Sprintf("socket,id=console,fd=%d", 4+len(o.Taps)), "-serial", "chardev:console",
		"-kernel", kernel, "-append", cmdline,
		"-chardev", "socket,id=agent,fd=3",
		"-device", "virtio-serial-" + dev, "-device", "virtserialport,chardev=agent,name=" + vmproto.PortName,
	}
	args = append(args, bootArgs...)
	args = append(args, biosArgs...)
	args = append(args, memArgs...)
	args = append(args, fsArgs...)
	args = append(args, nicArgs(o.NICs, dev)...)
	if err := v.startQEMU(exec.Command(qemu, args...), theirs); err != nil {
		return nil, err
	}
	o.qemuPid = v.qemu.Process.Pid
	o.mark("qemu")
	return v, nil
}

// nicArgs gives QEMU one virtio-net device per NIC, on the tap QEMU
// inherits as fd 4, 5, ... (fd 3 is the agent's port), with the MAC of
// the container interface the tap is bridged to. No vhost (it needs
// /dev/vhost-net in QEMU's root) and, on PCI, no option ROM: the guest
// does not boot from the network.
func nicArgs(nics []vmproto.NIC, dev string) []string {
	var args []string
	for i, n := range nics {
		d := fmt.Sprintf("virtio-net-%s,netdev=net%d,mac=%s", dev, i, n.MAC)
		if dev == "pci" {
			d += ",romfile="
		}
		args = append(args, "-netdev", fmt.Sprintf("tap,id=net%d,fd=%d,vhost=off", i, 4+i), "-device", d)
	}
	return args
}

// tcgCmdline skips two calibrations that under TCG spin the emulated CPU
// for wall-clock time, so that on a loaded host they cost the most CPU
// exactly when it is scarcest (docs/vm.md): the local APIC timer's, which
// fails its verification under TCG anyway and leaves the kernel on the
// PIT (noapictimer), and the delay loop's (lpj= gives the loops per
// jiffy it measures on an idle core here; udelay only paces emulated
// devices, which do not care). On KVM neither runs: the kernel takes
// both from the TSC's known frequency.
const tcgCmdline = " noapictimer lpj=1600000"

// Filter compiles o.Spec's linux.seccomp for the agent (nil when it has
// none) on the host, where it costs milliseconds, not in the guest, where
// libseccomp under TCG costs hundreds; cached in the cache directory
// unless o runs in a container, which cannot write it.
func Filter(o *Options) ([]byte, error) {
	if o.Spec == nil || o.Spec.Linux == nil || o.Spec.Linux.Seccomp == nil {
		return nil, nil
	}
	dir := ""
	if !o.InContainer {
		dir = filepath.Join(cacheDir(o), "seccomp")
	}
	bpf, err := seccomp.Compile(o.Spec.Linux.Seccomp, dir)
	if err != nil {
		return nil, fmt.Errorf("vm: config.json linux.seccomp: %w", err)
	}
	return bpf, nil
}

// startQEMU starts cmd as the VM's QEMU with theirs, the agent port's
// other end, as its fd 3.
func (v *machine) startQEMU(cmd *exec.Cmd, theirs *os.File) error {
	v.qemu = cmd
	v.qemu.ExtraFiles = append([]*os.File{theirs}, v.o.Taps...)
	if v.conTheirs != nil {
		v.qemu.ExtraFiles = append(v.qemu.ExtraFiles, v.conTheirs)
	}
	if v.qerr == nil {
		v.qerr = tailbuf.New(maxQEMUErr)
	}
	v.qemu.Stderr = v.qerr
	v.qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := v.qemu.Start(); err != nil {
		return fmt.Errorf("vm: starting %s: %w", cmd.Path, err)
	}
	go func() {
		_ = v.qemu.Wait()
		// Not closing the port here: QEMU held the only other end, so
		// the port reads what QEMU passed on before it ended, then EOF.
		// A guest that reports its exit and powers off before the host
		// has read the report (a loaded host) must not lose it.
		close(v.qdone)
	}()
	return nil
}

// Assets returns the guest kernel and the initramfs for o, from the cache
// (made there on first use): the uncompressed kernel QEMU enters directly
// and the agent binary with the guest's modules. For a kernel that mounts
// a 9p root itself (NinepRoot) the initramfs is "": the guest boots the
// agent from a read-only share of its binary (Options.AgentRoot).
//
// When o.Machine is empty, Assets sets it to the machine that kernel boots
// fastest on: microvm without ACPI (no PCI bus to enumerate, no ACPI tables
// to interpret, no legacy devices) for a kernel that finds its virtio-mmio
// devices on the command line (scripts/build-vm-kernel.sh makes one), pc
// for Debian's stock kernel, which cannot (docs/vm.md).
func Assets(o *Options) (kernel, initrd string, err error) {
	cache := cacheDir(o)
	k, err := FindKernel()
	if err != nil {
		return "", "", err
	}
	if o.Machine == "" {
		o.Machine = "pc"
		if k.Microvm {
			o.Machine = "microvm,acpi=off"
		}
	}
	if kernel, err = bootKernel(k, cache); err != nil {
		return "", "", err
	}
	if NinepRoot(k) {
		return kernel, "", nil
	}
	agent := o.Agent
	if agent == "" {
		if agent, err = os.Executable(); err != nil {
			return "", "", err
		}
	}
	if initrd, err = initramfs(agent, k, cache); err != nil {
		return "", "", err
	}
	return kernel, initrd, nil
}

func cacheDir(o *Options) string {
	if o.CacheDir != "" {
		return o.CacheDir
	}
	return DefaultCacheDir
}

// sweepStale removes the run directories (and read-only views) of runs
// whose runtime was killed: QEMU and virtiofsd died with it (their
// parent-death signal), but a SIGKILLed runtime cleans nothing itself.
func sweepStale(tmp string) {
	ds, _ := filepath.Glob(filepath.Join(tmp, "bulwark-vm-*-*"))
	for _, d := range ds {
		pid, err := strconv.Atoi(strings.Split(strings.TrimPrefix(filepath.Base(d), "bulwark-vm-"), "-")[0])
		if err != nil || pid <= 0 || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		// TMPDIR is shared: only a directory this user made (MkdirTemp's
		// 0700, which nobody else can rename in a sticky TMPDIR) is a run
		// of ours. Another user's plant, or a symlink at ro, would have
		// root detach whatever mount it leads to.
		var st unix.Stat_t
		if unix.Lstat(d, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Uid != uint32(os.Geteuid()) {
			continue
		}
		_ = unix.Unmount(filepath.Join(d, "ro"), unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
		_ = os.RemoveAll(d)
	}
}

// qemuEscape doubles commas, QEMU's option separator, in a path.
func qemuEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func waitSocket(path string, p *exec.Cmd, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if p.ProcessState != nil || unix.Kill(p.Process.Pid, 0) != nil {
			return errors.New("exited before it listened")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no socket %s after %v", path, wait)
		}
		time.Sleep(time.Millisecond)
	}
}

func (v *machine) readonlyView(src string) (string, error) {
	dst := filepath.Join(v.dir, "ro")
	if err := os.Mkdir(dst, 0o700); err != nil {
		return "", err
	}
	if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return "", fmt.Errorf("vm: read-only view of %s: %w", src, err)
	}
	v.roMount = dst
	if err := unix.Mount("", dst, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		return "", fmt.Errorf("vm: read-only view of %s: %w", src, err)
	}
	return dst, nil
}

func (v *machine) dropReadonlyView() {
	if v.roMount != "" {
		_ = unix.Unmount(v.roMount, unix.MNT_DETACH)
		v.roMount = ""
	}
}

// BootTimeout bounds the boot up to the agent's first frame: a kernel that
// hangs (or cannot power off) must not hold the run forever. TCG boots
// in seconds on an idle host; this leaves room for a loaded one.
var BootTimeout = 120 * time.Second

type frame struct {
	kind byte
	data []byte
	err  error
}

// wait sends the config, relays stdio and signals, and returns the
// payload's status.
func (v *machine) wait() (int, error) {
	o := v.o
	frames := make(chan frame, 16)
	go func() {
		for {
			k, d, err := v.conn.Read()
			frames <- frame{k, d, err}
			if err != nil {
				return
			}
		}
	}()
	boot := time.NewTimer(BootTimeout)
	defer boot.Stop()
	ready := false
	var sessions <-chan []byte // read once the agent has its config
	var size []byte            // a resize that came before the config went
	for {
		select {
		case d := <-sessions:
			_ = v.conn.Write(vmproto.KindSession, d)
		case b := <-o.Resize:
			if !ready {
				size = b
				continue
			}
			_ = v.conn.Write(vmproto.KindResize, b)
		case <-boot.C:
			if !ready {
				return -1, v.died("booting", fmt.Errorf("no word from the agent after %v", BootTimeout))
			}
		case s := <-o.Signals:
			n, ok := s.(syscall.Signal)
			if !ok || n <= 0 || n > 255 {
				continue
			}
			if !ready {
				// Nothing runs yet: a signal that ends the run ends
				// the boot.
				return -1, fmt.Errorf("vm: %v while the VM booted", s)
			}
			_ = v.conn.Write(vmproto.KindSignal, []byte{byte(n)})
		case f := <-frames:
			if f.err != nil {
				return -1, v.died(map[bool]string{false: "before the agent started", true: "while the payload ran"}[ready], f.err)
			}
			switch f.kind {
			case vmproto.KindReady:
				if ready {
					return -1, errors.New("vm agent: said ready twice")
				}
				ready = true
				o.mark("agent")
				v.dropReadonlyView()
				var dns []string
				if o.DNS != nil {
					dns = o.DNS.Servers()
				}
				cfg, err := json.Marshal(&vmproto.Config{Spec: o.Spec, FS: o.FS, Seccomp: v.seccomp, NICs: o.NICs, DNS: dns})
				if err != nil {
					return -1, err
				}
				if err := v.conn.Write(vmproto.KindConfig, cfg); err != nil {
					return -1, v.died("sending the config", err)
				}
				if size != nil {
					_ = v.conn.Write(vmproto.KindResize, size)
				}
				go v.feedStdin()
				sessions = o.SessionIn
			case vmproto.KindStdout:
				if o.Stdout != nil {
					_, _ = o.Stdout.Write(f.data)
				}
			case vmproto.KindStderr:
				if o.Stderr != nil {
					_, _ = o.Stderr.Write(f.data)
				}
			case vmproto.KindSession:
				if o.SessionOut != nil {
					o.SessionOut(f.data)
				}
			case vmproto.KindDNS:
				if o.DNS == nil {
					return -1, fmt.Errorf("vm agent: unexpected frame %q", f.kind)
				}
				o.DNS.Handle(f.data, func(b []byte) { _ = v.conn.Write(vmproto.KindDNS, b) })
			case vmproto.KindExit:
				o.mark("exit")
				return vmproto.ParseExit(f.data)
			case vmproto.KindMark:
				name, at, err := vmproto.ParseMark(f.data)
				if err != nil {
					return -1, fmt.Errorf("vm agent: %w", err)
				}
				o.markGuest("guest "+name, at)
			case vmproto.KindFail:
				return -1, fmt.Errorf("vm agent: %s", vmproto.ParseFail(f.data))
			default:
				return -1, fmt.Errorf("vm agent: unexpected frame %q", f.kind)
			}
		}
	}
}

func (v *machine) feedStdin() {
	if v.o.Stdin != nil {
		_, _ = io.Copy(vmproto.Stream{C: v.conn, Kind: vmproto.KindStdin}, v.o.Stdin)
	}
	_ = v.conn.Write(vmproto.KindStdinEOF, nil)
}

// died explains a port that closed: QEMU's own error and the end of the
// guest's console say why (no kernel, a panic, an agent that crashed).
func (v *machine) died(when string, err error) error {
	select {
	case <-v.qdone:
	case <-time.After(2 * time.Second):
	}
	msg := strings.TrimSpace(v.qerr.String())
	if msg == "" {
		msg = "QEMU: " + fmt.Sprint(v.qemu.ProcessState)
	}
	if tail := lastLines(v.console, 12); tail != "" {
		msg += "\nguest console:\n" + tail
	}
	return fmt.Errorf("%w (%s: %v): %s", ErrAgent, when, err, msg)
}

// Bounds on what the host keeps of the guest's console and of QEMU's
// stderr: enough for the end of a panic and QEMU's own error.
const (
	maxConsole = 64 << 10
	maxQEMUErr = 64 << 10
)

// consoleReader makes the socket QEMU writes the guest's serial console
// to and keeps its end in v.console (with $BULWARK_VM_DEBUG=1, all of it
// in console.log in the run directory too).
func (v *machine) consoleReader() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	ours := os.NewFile(uintptr(fds[0]), "console")
	v.conTheirs = os.NewFile(uintptr(fds[1]), "console-qemu")
	var w io.Writer = v.console
	if os.Getenv("BULWARK_VM_DEBUG") == "1" {
		if f, err := os.Create(filepath.Join(v.dir, "console.log")); err == nil {
			w = io.MultiWriter(w, f)
			defer func() { go func() { <-v.qdone; f.Close() }() }()
		}
		// A container's run directory goes with the container (at the
		// end of `bulwark run`): its console is printed as well, on the
		// monitor's stderr, which is the person's (or the engine's log).
		if v.o.InContainer && v.o.Stderr != nil {
			w = io.MultiWriter(w, &consoleLines{out: v.o.Stderr})
		}
	}
	go func() {
		// Ends when QEMU, the only other holder, has exited.
		_, _ = io.Copy(w, ours)
		ours.Close()
	}()
	return nil
}

func lastLines(t *tailbuf.Buffer, n int) string {
	if t == nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(t.String()), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stop ends QEMU and virtiofsd and removes the run's directory. The agent
// synced the guest before it reported the exit, so killing loses nothing.
func (v *machine) stop() {
	v.stopOnce.Do(func() {
		if v.qemu != nil && v.qemu.Process != nil {
			_ = v.qemu.Process.Kill()
			<-v.qdone
		}
		if v.sock != nil {
			v.sock.Close()
		}
		if v.fsd != nil && v.fsd.Process != nil {
			_ = v.fsd.Process.Kill()
			_ = v.fsd.Wait()
		}
		v.dropReadonlyView()
		if os.Getenv("BULWARK_VM_DEBUG") == "1" && !v.o.InContainer {
			fmt.Fprintf(os.Stderr, "vm: kept %s (BULWARK_VM_DEBUG)\n", v.dir)
		} else if v.dir != "" && !v.keepDir {
			_ = os.RemoveAll(v.dir)
		}
	})
}

// memoryMiB is the guest's RAM: the container's memory limit (the VM is
// what the limit binds now), at least what the kernel and agent need, or
// 512 MiB. QEMU allocates it as the guest touches it.
func memoryMiB(s *specs.Spec) int64 {
	const floor, def = 192, 512
	if s.Linux != nil && s.Linux.Resources != nil && s.Linux.Resources.Memory != nil && s.Linux.Resources.Memory.Limit != nil {
		m := *s.Linux.Resources.Memory.Limit
		if m > 0 {
			mib := (m + (1<<20 - 1)) >> 20
			return max(mib, floor)
		}
	}
	return def
}

// vcpus follows the CPU quota (rounded up), else 1: under TCG a second
// vCPU slows the boot down.
func vcpus(s *specs.Spec) int {
	if s.Linux != nil && s.Linux.Resources != nil && s.Linux.Resources.CPU != nil {
		c := s.Linux.Resources.CPU
		if c.Quota != nil && c.Period != nil && *c.Quota > 0 && *c.Period > 0 {
			return int(max(1, (uint64(*c.Quota)+*c.Period-1) / *c.Period))
		}
	}
	return 1
}

// cpuTime is a live process's user+system CPU time, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, bool) {
	if pid <= 0 {
		return 0, false
	}
	st, err := procstat.Read(pid)
	if err != nil {
		return 0, false
	}
	cpu, err := st.CPUTime()
	return cpu, err == nil
}
