package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/phase"
	"github.com/bulwark-sec/bulwark/internal/rawtty"
	"github.com/bulwark-sec/bulwark/pkg/cgroups"
	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// RunOpts are run's flags beyond create's.
type RunOpts struct {
	CreateOpts
	Detach bool
	Keep   bool // keep the stopped container instead of deleting it
	// Signals, when set, are the caller's (NotifySignals), left registered
	// after Run; without, Run registers and unregisters its own.
	Signals *Signals
	// Created, when set, is called with the init's pid once the container
	// is created, before its payload starts; an error deletes it and ends
	// the run (a user-mode network is made ready here).
	Created func(pid int) error
	// Started, when set, is called once the payload runs, before Run
	// waits for it (a detached person's run reports it then); an error
	// deletes the container and ends the run (nobody was told it runs).
	Started func() error
}

// Run creates and starts a container; attached, it forwards signals and the
// terminal, waits for the init and returns its exit status.
func (r *Runtime) Run(id, bundle string, o *RunOpts) (int, error) {
	if o.Detach {
		if err := r.Create(id, bundle, &o.CreateOpts); err != nil {
			return -1, err
		}
		if err := r.created(id, o); err != nil {
			return -1, err
		}
		if err := r.Start(id); err != nil {
			r.Delete(id, true)
			return -1, err
		}
		return 0, nil
	}
	// The init double-forks into its pid namespace; as a subreaper we get it
	// back as our child and can wait for it.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("subreaper: %w", err)
	}
	sigs := o.Signals
	if sigs == nil {
		sigs = NotifySignals()
		defer sigs.Stop()
	}
	phase.Mark("signals")
	o.wantConsole = o.ConsoleSocket == ""
	if err := r.Create(id, bundle, &o.CreateOpts); err != nil {
		return -1, err
	}
	st, err := r.loadState(id)
	if err != nil {
		return -1, err
	}
	tty := attachConsole(o.gotConsole)
	phase.Mark("created")
	if err := r.created(id, o); err != nil {
		if tty != nil {
			tty.master.Close()
			rawtty.Restore(0, tty.restore)
		}
		return -1, err
	}
	sigs.Wait()
	if err := r.Start(id); err != nil {
		r.Delete(id, true)
		return -1, err
	}
	phase.Mark("started")
	if o.Started != nil {
		if err := o.Started(); err != nil {
			if tty != nil {
				tty.close()
			}
			r.Delete(id, true)
			return -1, err
		}
	}
	code := waitFor(st.Pid, sigs.C, tty)
	phase.Mark("waited")
	if tty != nil {
		tty.close()
	}
	if !o.Keep {
		if err := r.Delete(id, true); err != nil && !errors.Is(err, ErrNotExist) {
			return code, err
		}
	}
	phase.Mark("deleted")
	return code, nil
}

// created runs o.Created; when it fails, the container is deleted.
func (r *Runtime) created(id string, o *RunOpts) error {
	if o.Created == nil {
		return nil
	}
	st, err := r.loadState(id)
	if err == nil {
		err = o.Created(st.Pid)
	}
	if err != nil {
		r.Delete(id, true)
	}
	return err
}

// ExecOpts are exec's flags.
type ExecOpts struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	// PidfdSocket as in CreateOpts, for the exec'd process.
	PidfdSocket string
	// IgnorePaused lets the process join a paused container, where it
	// waits, frozen, for resume (runc's --ignore-paused).
	IgnorePaused bool
	// SubCgroups are sub-cgroups of the container's to put the process in
	// (cgroups.ParseSubCgroups).
	SubCgroups  map[string]string
	Detach      bool
	PreserveFds int
	// Signals as in RunOpts; unused with Detach.
	Signals *Signals
}

// Exec starts another process inside a running container.
func (r *Runtime) Exec(id string, o *ExecOpts) (int, error) {
	if err := oci.ValidateID(id); err != nil {
		return -1, err
	}
	st, err := r.loadState(id)
	if err != nil {
		return -1, err
	}
	switch s := r.Status(st); {
	case s == "paused" && !o.IgnorePaused:
		// runc's words, which tools match.
		return -1, fmt.Errorf("container %q: cannot exec in a paused container (use --ignore-paused to override)", id)
	case s != specs.StateRunning && s != specs.StateCreated && s != "paused":
		return -1, fmt.Errorf("container %q is %s: %w", id, s, ErrNotRunning)
	}
	p := o.Process
	if r.HardenExec != nil {
		if err := r.HardenExec(st.Config, p); err != nil {
			return -1, err
		}
	}
	if p.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, errors.New("exec: a terminal with --detach needs --console-socket")
	}
	if !o.Detach {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			return -1, fmt.Errorf("subreaper: %w", err)
		}
	}
	var consoleConn *os.File
	if p.Terminal && o.ConsoleSocket != "" {
		if consoleConn, err = dialConsole(o.ConsoleSocket); err != nil {
			return -1, err
		}
		defer consoleConn.Close()
	}
	var pidfdSock *os.File
	if o.PidfdSocket != "" {
		if pidfdSock, err = dialUnix("--pidfd-socket", o.PidfdSocket); err != nil {
			return -1, err
		}
		defer pidfdSock.Close()
	}
	cg, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return -1, fmt.Errorf("container %q: %w", id, err)
	}
	sigs := o.Signals
	if sigs == nil && !o.Detach {
		sigs = NotifySignals()
		defer sigs.Stop()
	}
	bpf := r.compileSeccomp(st.Config)
	ip, err := r.startInit(st.Config, nil, initParams{
		preserveFds: o.PreserveFds,
		console:     consoleConn,
		cgroup:      cg,
		affinity:    p.ExecCPUAffinity,
		pidfdSocket: pidfdSock,
		subCgroups:  o.SubCgroups,
		bootstrap:   func(int) *initproto.Bootstrap { return initproto.ExecBootstrap(st.Config, st.Pid, p.OOMScoreAdj) },
	})
	if err != nil {
		return -1, fmt.Errorf("exec in %q: %w", id, err)
	}
	defer ip.conn.Close()
	cfg := &initproto.InitConfig{ID: id, Bundle: st.Bundle, Rootfs: st.Rootfs, Spec: st.Config, Process: p, Exec: true,
		PreserveFds: o.PreserveFds, ConsoleFd: ip.consoleFd, FifoFd: -1}
	if cfg.SeccompProgram, err = bpf(); err != nil {
		unix.Kill(ip.pid, unix.SIGKILL)
		return -1, err
	}
	if err := ip.sendConfig(cfg); err != nil {
		unix.Kill(ip.pid, unix.SIGKILL)
		return -1, err
	}
	var master *os.File
	readyReported := false
	err = ip.converse(conversation{
		console: func(f *os.File) { master = f },
		seccomp: func(fds []*os.File) error { return r.sendSeccomp(st.Config, st, fds) },
		ready: func() error {
			// The process is set up and waits for our word: report its
			// pid first, so a runtime killed before the word leaves no
			// process the engine does not know (the init exits on EOF).
			if o.PidFile != "" {
				if err := WritePidFile(o.PidFile, ip.pid); err != nil {
					return err
				}
			}
			readyReported = true
			if sigs != nil {
				sigs.Wait()
			}
			return nil
		},
		untilExec: true,
	})
	var initErr initproto.Error
	switch {
	case readyReported && (err == nil || errors.Is(err, io.EOF)):
		// execve closed the socket: the process runs.
	case errors.Is(err, io.EOF):
		// EOF before the init said it was ready: it died.
		reap(ip.pid)
		return -1, fmt.Errorf("exec in %q: the process exited before it was started", id)
	case errors.As(err, &initErr):
		reap(ip.pid)
		if o.PidFile != "" && readyReported {
			os.Remove(o.PidFile)
		}
		return -1, fmt.Errorf("exec in %q: %s", id, initErr.Msg)
	default:
		unix.Kill(ip.pid, unix.SIGKILL)
		return -1, err
	}
	if o.Detach {
		return 0, nil
	}
	tty := attachConsole(master)
	code := waitFor(ip.pid, sigs.C, tty)
	if tty != nil {
		tty.close()
	}
	return code, nil
}

// waitFor reaps children until pid exits, forwarding signals to it, and
// returns a shell-style exit code.
func waitFor(pid int, sigs chan os.Signal, tty *ttyRelay) int {
	done := make(chan int, 1)
	go func() {
		for {
			var ws unix.WaitStatus
			wpid, err := unix.Wait4(-1, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				done <- 255
				return
			}
			if wpid != pid {
				continue
			}
			switch {
			case ws.Exited():
				done <- ws.ExitStatus()
			case ws.Signaled():
				done <- 128 + int(ws.Signal())
			default:
				continue
			}
			return
		}
	}()
	for {
		select {
		case code := <-done:
			return code
		case s := <-sigs:
			sig := s.(unix.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				continue
			case unix.SIGWINCH:
				if tty != nil {
					tty.resize()
				}
				continue
			}
			unix.Kill(pid, sig)
		}
	}
}

func reap(pid int) {
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
}

// ttyRelay copies between our stdio and a container's pty master.
type ttyRelay struct {
	master  *os.File
	restore *unix.Termios
	done    chan struct{}
}

func attachConsole(master *os.File) *ttyRelay {
	if master == nil {
		return nil
	}
	t := &ttyRelay{master: master, done: make(chan struct{})}
	if t.restore = rawtty.Make(0); t.restore != nil {
		t.resize()
	}
	go io.Copy(master, os.Stdin)
	go func() {
		io.Copy(os.Stdout, master)
		close(t.done)
	}()
	return t
}

func (t *ttyRelay) resize() {
	if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

func (t *ttyRelay) close() {
	// The payload has exited; its output may still sit in the pty.
	<-t.done
	rawtty.Restore(0, t.restore)
	t.master.Close()
}

// PidsOf lists the container's processes (for ps).
func (r *Runtime) PidsOf(id string) ([]int, error) {
	st, err := r.Load(id)
	if err != nil {
		return nil, err
	}
	m, err := cgroups.Load(st.Cgroup)
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

// StateDir is where a container's files live (for tests and debugging).
func (r *Runtime) StateDir(id string) string { return filepath.Join(r.Root, id) }
