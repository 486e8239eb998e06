package userface

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/containerlog"
)

// A detached run (-d) is the same run as a foreground one, made by a
// monitor process of its own: the command the person typed starts
// itself again in a new session, with envMonitor naming the container
// and fd 3 a pipe on which the monitor says "ok" once the payload runs,
// or why it could not start; the person's command prints the name and
// returns. The monitor stays the container's parent (its subreaper, as a
// foreground run is), relays the payload's stdout and stderr into the
// log (logFile, capped, the two streams kept apart: pkg/containerlog), records the exit status, and with --rm deletes
// the container when it ends. So a detached container outlives the
// command that started it, and there is no daemon: killing the monitor
// leaves a running container whose output goes nowhere, which bulwark
// stop and rm still handle.
const (
	envMonitor = "_BULWARK_MONITOR"
	// envStarter is the pid of the command that started the monitor.
	envStarter = "_BULWARK_MONITOR_STARTER"
	// logFile is the payload's stdout and stderr, in the bundle directory
	// (removed with the container); logFile+".1" holds the previous
	// logMax bytes once it fills.
	logFile  = "container.log"
	exitFile = "exit"
)

// logMax caps each of the two log files.
var logMax int64 = 8 << 20

// detach starts the monitor and waits for its word.
func detach(o *Options) (int, error) {
	id := o.Name
	if id == "" {
		var err error
		if id, err = newName(); err != nil {
			return -1, err
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer r.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		w.Close()
		return -1, err
	}
	defer null.Close()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envMonitor+"="+id, envStarter+"="+strconv.Itoa(os.Getpid()))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, null
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return -1, fmt.Errorf("--detach: starting the monitor: %w", err)
	}
	msg, _ := io.ReadAll(r)
	if string(msg) == "ok" {
		// The monitor is nobody's child to wait for now: init reaps it.
		_ = cmd.Process.Release()
		fmt.Println(id)
		return 0, nil
	}
	_ = cmd.Wait()
	if len(msg) == 0 {
		return -1, fmt.Errorf("--detach: the monitor of %s ended before the container started", id)
	}
	return -1, errors.New(string(msg))
}

// detached is the monitor's side of a detached run.
type detached struct {
	ready   *os.File
	mu      sync.Mutex
	told    bool     // the starting command has had its one word
	dir     *os.File // the bundle directory, held so writes never land in a successor's
	log     *containerlog.Log
	relay   []*os.File // the pipes' write ends: the payload's stdout and stderr
	relayed sync.WaitGroup
}

// monitor runs o as the detached container id and reports to the
// command that started it.
func monitor(rt *container.Runtime, o *Options, id string) (int, error) {
	// Not the container's: it must not inherit the pipe.
	unix.CloseOnExec(3)
	d := &detached{ready: os.NewFile(3, "ready")}
	starter, _ := strconv.Atoi(os.Getenv(envStarter))
	go d.watchStarter(starter)
	r := *o
	r.Name = id
	code, err := run(rt, &r, d)
	if err != nil {
		d.report(err)
	} else {
		_ = d.started()
	}
	return code, err
}

// report tells the starting command why the payload does not run.
func (d *detached) report(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.told {
		d.told = true
		_, _ = d.ready.WriteString(err.Error())
		d.ready.Close()
	}
}

// errStarterGone: the command that started the monitor died before it
// heard that the payload runs.
var errStarterGone = errors.New("--detach: the bulwark run that started this container was killed before the container started")

// started tells the starting command that the payload runs; from then on
// the monitor outlives it. A command already gone has told its person
// nothing: the container must not stay.
func (d *detached) started() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.told {
		return nil
	}
	d.told = true
	_, err := d.ready.WriteString("ok")
	d.ready.Close()
	if err != nil {
		return fmt.Errorf("%w: %w", errStarterGone, err)
	}
	return nil
}

// watchStarter ends the monitor as the kernel ends a foreground run whose
// command is SIGKILLed, when the command that started it dies before it
// heard that the payload runs: the person got no name, and must find
// no container made after the kill, nor one whose making raced their rm
// -f. What the monitor had made by then is a killed run's, which rm -f
// removes. (Not PR_SET_PDEATHSIG: the monitor could clear it, once the
// payload runs, on its main thread only, which Go does not give it; nor
// a poll of the pipe, whose wait would hold the pipe open.)
func (d *detached) watchStarter(starter int) {
	pfd, err := unix.PidfdOpen(starter, 0)
	if err != nil && os.Getppid() == starter {
		// No pidfd to watch it by (a seccomp filter refuses it): the
		// monitor goes on, as it did before it watched.
		return
	}
	if err == nil {
		defer unix.Close(pfd)
	}
	// The starter is our parent while it lives, so a pid that is still
	// our parent's after the open was the starter's at the open.
	if err == nil && os.Getppid() == starter {
		fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
	}
	d.mu.Lock()
	if !d.told {
		// With the monitor's process group, which it leads (detach starts
		// it in a session of its own): a child it forked and has not
		// exec'd yet (the container's init on its way) would otherwise
		// outlive it for a moment, showing the run's command line.
		if unix.Getpgrp() == os.Getpid() {
			_ = unix.Kill(-os.Getpid(), unix.SIGKILL)
		}
		_ = unix.Kill(os.Getpid(), unix.SIGKILL)
	}
	d.mu.Unlock()
}

// startLog points the monitor's stdout and stderr, which the container's
// init inherits, at two pipes relayed into the log in bundle.
func (d *detached) startLog(bundle string) error {
	dir, err := os.Open(bundle)
	if err != nil {
		return fmt.Errorf("log: %w", err)
	}
	d.dir = dir
	if d.log, err = containerlog.Open(dir, logFile, logMax); err != nil {
		return fmt.Errorf("log: %w", err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	var w [2]*os.File
	for i, stream := range []string{"stdout", "stderr"} {
		pr, pw, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("log: %w", err)
		}
		w[i] = pw
		d.relay = append(d.relay, pw)
		d.relayed.Add(1)
		go func() {
			defer d.relayed.Done()
			_ = d.log.Relay(stream, pr)
			pr.Close()
		}()
	}
	os.Stdin, os.Stdout, os.Stderr = null, w[0], w[1]
	return nil
}

// exited records the payload's status and drains the log.
func (d *detached) exited(code int) {
	if d.relay != nil {
		for _, w := range d.relay {
			w.Close()
		}
		d.relayed.Wait()
		d.log.Close()
	}
	if d.dir != nil {
		writeAt(d.dir, exitFile, []byte(strconv.Itoa(code)+"\n"))
		d.dir.Close()
	}
}

// writeAt writes name in dir (by its fd: a removed directory takes the
// write nowhere).
func writeAt(dir *os.File, name string, b []byte) {
	fd, err := unix.Openat(int(dir.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), name)
	_, _ = f.Write(b)
	f.Close()
}
