// Package usernet attaches a container's network namespace to a user-mode
// network: a relay process of the caller's, outside the container, that owns
// the namespace's only interface and carries its traffic through ordinary
// sockets on the host (Debian's pasta, from the passt package, or
// slirp4netns). No bridge, no NAT rule, no privilege: it is what a rootless
// run has instead of CNI, and works for root too.
//
// Threat model: the relay holds host sockets and runs in the host's mount
// namespace, so it must never be reachable from inside the container as a
// process (it stays outside the container's pid namespace) and must not
// outlive the container. It is not the container's child and loses its
// parent-death signal when it joins the container's user namespace (pasta),
// so a keeper of Bulwark's own, in a session of its own, starts it, watches
// the container's init through a pidfd and kills it when the init ends,
// also when the `bulwark run` that started it was SIGKILLed. A watcher,
// the keeper's second child, kills the relay (through a pidfd, never a
// reused pid) when the keeper itself dies, however it dies. Keeper,
// watcher and relay are one process group, recorded for delete
// (container.OwnedProcessGroup) and for `bulwark gc`, which kill what is
// left of it. The relay is attached before the
// payload's execve: the init hands its namespaces to the runtime over the
// sync socket (container.CreateOpts.Namespaces) and the run starts the
// payload only once the keeper reports the relay ready.
//
// Not for: reaching the host's own loopback services from the container
// (pasta runs with -T none -U none and --no-map-gw, which would otherwise
// turn a connection to the gateway's address into one to the host's
// 127.0.0.1; slirp4netns with --disable-host-loopback).
package usernet

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/network"
)

// Kinds, as --net spells them.
const (
	Pasta = "pasta"
	Slirp = "slirp"
)

// Is tells whether --net NAME is a user-mode network.
func Is(name string) bool { return name == Pasta || name == Slirp }

// Tool is the program a kind runs and the Debian package that has it.
func Tool(kind string) (bin, pkg string) {
	if kind == Slirp {
		return "slirp4netns", "slirp4netns"
	}
	return "pasta", "passt"
}

// RecordFile is the keeper's process-group record in a run's directory.
const RecordFile = "usernet.pgid"

// readyTimeout bounds the wait for the relay: a busy host may take a
// second, nothing legitimate takes this long.
const readyTimeout = 20 * time.Second

// config is what the keeper is told, in envKeeper.
type config struct {
	Kind  string         `json:"kind"`
	Ports []network.Port `json:"ports,omitempty"`
	Dir   string         `json:"dir"`
}

const (
	envKeeper = "_BULWARK_USERNET_KEEPER"
	envWatch  = "_BULWARK_USERNET_WATCHER"
)

// The watcher's fds: 3 the read end of a pipe only the keeper writes to
// (it never does: the end of the pipe is the keeper's death), 4 a pidfd
// of the relay.
const (
	fdKeeperAlive = 3 + iota
	fdRelay
)

// The keeper's fds: 3 its report to the run (closed once the relay is
// ready, after "ok" or the reason it is not), 4 a pidfd of the container's
// init, 5 and 6 the init's user and network namespaces.
const (
	fdReport = 3 + iota
	fdInit
	fdUserns
	fdNetns
)

// Relay is a running keeper and its relay.
type Relay struct {
	keeper *os.Process
	record string
}

// Attach starts the keeper for the container whose init is initPid, with
// its user and network namespaces, and returns once the relay is ready:
// its interface configured and the ports published. dir is private to the
// run and the keeper's record goes there (RecordFile), before anything
// else is started.
func Attach(kind string, ports []network.Port, initPid int, userns, netns *os.File, dir string) (*Relay, error) {
	pidfd, err := unix.PidfdOpen(initPid, 0)
	if err != nil {
		return nil, fmt.Errorf("--net %s: the container's init: pidfd_open: %w", kind, err)
	}
	initFile := os.NewFile(uintptr(pidfd), "init-pidfd")
	defer initFile.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	cfg, err := json.Marshal(config{Kind: kind, Ports: ports, Dir: dir})
	if err != nil {
		wr.Close()
		return nil, err
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-usernet"}
	cmd.Env = append(os.Environ(), envKeeper+"="+string(cfg))
	cmd.ExtraFiles = []*os.File{wr, initFile, userns, netns}
	// Its own session: the terminal's ^C is for the payload, and the
	// group is what delete kills.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return nil, fmt.Errorf("--net %s: starting its keeper: %w", kind, err)
	}
	r := &Relay{keeper: cmd.Process, record: filepath.Join(dir, RecordFile)}
	if err := container.RecordGroup(r.record, cmd.Process.Pid); err != nil {
		r.Stop()
		return nil, err
	}
	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rd)
		msg <- string(b)
	}()
	select {
	case m := <-msg:
		if m == "ok" {
			return r, nil
		}
		r.Stop()
		if m == "" {
			m = "its keeper exited without a word"
		}
		return nil, fmt.Errorf("--net %s: %s", kind, m)
	case <-time.After(readyTimeout):
		r.Stop()
		return nil, fmt.Errorf("--net %s: %s not ready after %v", kind, kind, readyTimeout)
	}
}

// Stop kills keeper and relay and reaps the keeper (the run is a subreaper
// and its parent). Safe on nil and twice.
func (r *Relay) Stop() {
	if r == nil || r.keeper == nil {
		return
	}
	// Asked first, the keeper kills and reaps the relay itself: killed
	// together, the relay would be reparented to the run (a subreaper) and
	// stay a zombie until the run exits.
	_ = r.keeper.Signal(syscall.SIGTERM)
	if !r.reaped(2 * time.Second) {
		_ = container.KillRecordedGroup(r.record)
		_ = r.keeper.Kill()
		r.reaped(5 * time.Second)
	}
	_ = os.Remove(r.record)
	r.keeper = nil
}

// reaped waits up to d for the keeper to exit and reaps it. The run's own
// wait for the payload may have reaped it already.
func (r *Relay) reaped(d time.Duration) bool {
	for deadline := time.Now().Add(d); ; {
		var ws unix.WaitStatus
		n, err := unix.Wait4(r.keeper.Pid, &ws, unix.WNOHANG, nil)
		if n == r.keeper.Pid || err != nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// IsKeeper tells whether this process was started as a keeper (or as
// its watcher).
func IsKeeper() bool { return os.Getenv(envKeeper) != "" || os.Getenv(envWatch) != "" }

// Keeper is the keeper's (or its watcher's) whole life; it does not return.
func Keeper() {
	// Its name in ps (and in the tests' search for leftovers).
	name := []byte("bulwark-usernet\x00")
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	if os.Getenv(envWatch) != "" {
		watch()
	}
	report := os.NewFile(fdReport, "report")
	var cfg config
	if err := json.Unmarshal([]byte(os.Getenv(envKeeper)), &cfg); err != nil {
		fmt.Fprintf(report, "keeper: bad config: %v", err)
		os.Exit(2)
	}
	// The relay's parent-death signal is tied to the thread that
	// started it: this one, to the end.
	runtime.LockOSThread()
	// SIGTERM is the run's word that it is done (Stop).
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	relay, relayFd, exited, err := start(cfg)
	if err != nil {
		fmt.Fprint(report, err.Error())
		os.Exit(1)
	}
	watcher, err := startWatcher(relayFd)
	relayFd.Close()
	if err != nil {
		_ = relay.Kill()
		<-exited
		fmt.Fprintf(report, "keeper: starting its watcher: %v", err)
		os.Exit(1)
	}
	report.WriteString("ok")
	report.Close()
	code := keep(relay, exited, term)
	reapWatcher(watcher)
	os.Exit(code)
}

// startWatcher starts the process that kills the relay if the keeper
// dies: the relay's parent-death signal does not survive its entry into
// the container's user namespace, and the keeper may be SIGKILLed. The
// watcher stays in the keeper's process group. The write end of its pipe
// stays open in the keeper, and only there, until the keeper exits.
func startWatcher(relayFd *os.File) (*os.Process, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-usernet"}
	cmd.Env = []string{envWatch + "=1"}
	cmd.ExtraFiles = []*os.File{rd, relayFd}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, err
	}
	keeperAlive = wr // never closed: the keeper's exit closes it
	return cmd.Process, nil
}

// keeperAlive holds the watcher's pipe open for the keeper's life.
var keeperAlive *os.File

// reapWatcher waits for the watcher, which ends with the relay, so that it
// is not left a zombie of the run; a watcher still there after a while is
// killed.
func reapWatcher(w *os.Process) {
	done := make(chan struct{})
	go func() {
		_, _ = w.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = w.Kill()
		<-done
	}
}

// watch is the watcher's whole life: it ends with the relay, or kills the
// relay when the keeper is gone.
func watch() {
	fds := []unix.PollFd{{Fd: fdKeeperAlive, Events: unix.POLLIN}, {Fd: fdRelay, Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			break
		}
	}
	if fds[1].Revents == 0 {
		// The keeper is gone and the relay lives: a pidfd names only
		// the relay, even once its pid is reused.
		_ = unix.PidfdSendSignal(fdRelay, unix.SIGKILL, nil, 0)
	}
	os.Exit(0)
}

// keep waits until the container's init or the relay ends, or the run is
// done with it, then kills the relay and reaps it. pdeathsig would not do:
// pasta loses it when it joins the container's user namespace.
func keep(relay *os.Process, exited <-chan error, term <-chan os.Signal) int {
	initEnded := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: fdInit, Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		close(initEnded)
	}()
	select {
	case <-exited:
		return 1
	case <-initEnded:
	case <-term:
	}
	_ = relay.Kill()
	<-exited
	return 0
}

// start runs the relay as the keeper's child, in its process group, and
// waits until it is ready. It returns the relay, a pidfd of it (opened
// before anything may reap it) and its exit.
func start(cfg config) (*os.Process, *os.File, <-chan error, error) {
	logPath := filepath.Join(cfg.Dir, "usernet.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, nil, err
	}
	defer logf.Close()
	userns, netns := os.NewFile(fdUserns, "userns"), os.NewFile(fdNetns, "netns")
	// The relay sees the namespaces as its fds 5 and 6 (/proc/self/fd:
	// after joining the user namespace it may not open ours); 3 and 4
	// are closed in it, or slirp4netns's ready pipe.
	var cmd *exec.Cmd
	var ready func() error
	switch cfg.Kind {
	case Pasta:
		pidFile := filepath.Join(cfg.Dir, "pasta.pid")
		os.Remove(pidFile)
		args := pastaArgs(cfg.Ports, pidFile, os.Geteuid() == 0)
		cmd = exec.Command("pasta", args...)
		cmd.ExtraFiles = []*os.File{nil, nil, userns, netns}
		// pasta writes its pid file once its interface is configured
		// and its ports bound.
		ready = func() error {
			for {
				if b, err := os.ReadFile(pidFile); err == nil && len(b) > 0 && b[len(b)-1] == '\n' {
					return nil
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
	case Slirp:
		api := filepath.Join(cfg.Dir, "slirp.sock")
		rd, wr, err := os.Pipe()
		if err != nil {
			return nil, nil, nil, err
		}
		defer rd.Close()
		defer wr.Close()
		cmd = exec.Command("slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
			"--api-socket", api, "--ready-fd=3", "--userns-path=/proc/self/fd/5",
			"--netns-type=path", "/proc/self/fd/6", "tap0")
		cmd.ExtraFiles = []*os.File{wr, nil, userns, netns}
		ready = func() error {
			wr.Close()
			b := make([]byte, 1)
			if _, err := rd.Read(b); err != nil {
				return err
			}
			for _, pt := range cfg.Ports {
				if err := slirpForward(api, pt); err != nil {
					return fmt.Errorf("-p %s: %w", pt, err)
				}
			}
			return nil
		}
	default:
		return nil, nil, nil, fmt.Errorf("--net %s: not a user-mode network", cfg.Kind)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	// slirp4netns stays in our namespaces and keeps it: dies with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	bin := cmd.Args[0]
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", bin, err)
	}
	userns.Close()
	netns.Close()
	// Before cmd.Wait may reap it: the pidfd is then surely the relay's.
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, nil, nil, fmt.Errorf("%s: pidfd_open: %w", bin, err)
	}
	relayFd := os.NewFile(uintptr(pidfd), "relay-pidfd")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	readyc := make(chan error, 1)
	go func() { readyc <- ready() }()
	fail := func(err error) (*os.Process, *os.File, <-chan error, error) {
		relayFd.Close()
		_ = cmd.Process.Kill()
		<-exited
		return nil, nil, nil, fmt.Errorf("%s: %v%s", bin, err, logTail(logPath))
	}
	select {
	case err := <-readyc:
		if err != nil {
			return fail(err)
		}
	case err := <-exited:
		if err == nil {
			err = errors.New("exited")
		}
		relayFd.Close()
		return nil, nil, nil, fmt.Errorf("%s: %v%s", bin, err, logTail(logPath))
	case <-time.After(readyTimeout):
		return fail(fmt.Errorf("not ready after %v", readyTimeout))
	}
	return cmd.Process, relayFd, exited, nil
}

// logTail is the relay's own words, without pasta's complaints that it has
// no syslog.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	var keep []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "to syslog") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return ""
	}
	return ": " + strings.Join(keep, "; ")
}

// pastaArgs is pasta's command line: in the foreground (the keeper is its
// parent), ready when pidFile is written, the namespaces as fds 5 and 6,
// the ports published, and nothing of the host's own reachable from the
// namespace (-T/-U none, --no-map-gw).
func pastaArgs(ports []network.Port, pidFile string, root bool) []string {
	args := []string{"-f", "-q", "--config-net", "--pid", pidFile, "-T", "none", "-U", "none",
		"--no-map-gw", "--no-netns-quit", "--userns", "/proc/self/fd/5", "--netns", "/proc/self/fd/6"}
	var tcp, udp []string
	for _, pt := range ports {
		spec := fmt.Sprintf("%d:%d", pt.HostPort, pt.ContainerPort)
		if pt.HostIP != "" {
			spec = pt.HostIP + "/" + spec
		}
		if pt.Protocol == "udp" {
			udp = append(udp, spec)
		} else {
			tcp = append(tcp, spec)
		}
	}
	args = append(args, "-t", orNone(tcp), "-u", orNone(udp))
	if root {
		// pasta started by root becomes nobody unless told, and nobody
		// may not enter a user namespace that root owns; slirp4netns
		// stays root likewise.
		args = append(args, "--runas", "0:0")
	}
	return args
}

func orNone(specs []string) string {
	if len(specs) == 0 {
		return "none"
	}
	return strings.Join(specs, ",")
}

// slirpForward asks slirp4netns's API for a host port forward.
func slirpForward(api string, p network.Port) error {
	c, err := net.DialTimeout("unix", api, 5*time.Second)
	if err != nil {
		return fmt.Errorf("slirp4netns API %s: %w", api, err)
	}
	defer c.Close()
	hostAddr := p.HostIP
	if hostAddr == "" {
		hostAddr = "0.0.0.0"
	}
	req := map[string]any{"execute": "add_hostfwd", "arguments": map[string]any{
		"proto": p.Protocol, "host_addr": hostAddr, "host_port": p.HostPort, "guest_port": p.ContainerPort}}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("slirp4netns API: %w", err)
	}
	var resp struct {
		Error *struct{ Desc string } `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return fmt.Errorf("slirp4netns API: %q: %w", line, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("slirp4netns: %s", resp.Error.Desc)
	}
	return nil
}
