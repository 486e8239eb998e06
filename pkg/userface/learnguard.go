package userface

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/learn"
)

// A learning run's containers must not outlive `bulwark learn`. Its
// recording filter hands every system call of the workload to learn's
// seccomp listener; once learn is gone (SIGKILL, an OOM kill) the kernel
// fails each of those calls with ENOSYS, so the workload runs on broken,
// and its container, user namespace range and state would stay until
// someone removed them by hand. The guard is a process of Bulwark's own,
// in a session of its own, that learn tells the name of each container
// before it exists and, at its end, that it is done. The end of its pipe
// without that word is learn's death: the guard then removes those
// containers (`rm -f`, with learn's global flags) and any temporary
// profile file the run was writing, so a killed recording leaves nothing
// and no partial profile.

const envLearnGuard = "_BULWARK_LEARN_GUARD"

// guardRemoveTimeout bounds the guard's `rm -f`: a stuck removal must not
// leave a guard behind forever.
const guardRemoveTimeout = 2 * time.Minute

// guardConfig is what the guard is told, in envLearnGuard.
type guardConfig struct {
	// Args are the global flags that reach learn's containers
	// (--root, --rootless, --systemd-cgroup), before `rm -f ID...`.
	Args []string `json:"args"`
	// Output is the profile file the run writes: a temporary file of it
	// left by a kill mid-write is removed too.
	Output string    `json:"output"`
	Start  time.Time `json:"start"`
}

// learnGuard is the learning run's side of the guard.
type learnGuard struct {
	w    *os.File
	proc *os.Process
}

// startLearnGuard starts the guard of a learning run of rt that writes
// output.
func startLearnGuard(rt *container.Runtime, output string) (*learnGuard, error) {
	args := []string{"--root", rt.Root, "--rootless", strconv.FormatBool(rt.Rootless)}
	if rt.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	abs, err := filepath.Abs(output)
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", output, err)
	}
	cfg, err := json.Marshal(guardConfig{Args: args, Output: abs, Start: time.Now()})
	if err != nil {
		return nil, err
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"bulwark-learn-guard"}
	cmd.Env = append(os.Environ(), envLearnGuard+"="+string(cfg))
	cmd.ExtraFiles = []*os.File{rd}
	// Its own session: the terminal's ^C is the workload's, and the guard
	// must see learn end, not end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		wr.Close()
		return nil, fmt.Errorf("learn: starting its guard: %w", err)
	}
	return &learnGuard{w: wr, proc: cmd.Process}, nil
}

// watch tells the guard the name of a container before it is created.
func (g *learnGuard) watch(id string) error {
	if _, err := fmt.Fprintf(g.w, "id %s\n", id); err != nil {
		return fmt.Errorf("learn: telling its guard about %s: %w", id, err)
	}
	return nil
}

// done tells the guard the run ended on its own (its containers are
// removed) and reaps it. Safe on nil.
func (g *learnGuard) done() {
	if g == nil {
		return
	}
	_, _ = io.WriteString(g.w, "done\n")
	g.w.Close()
	_, _ = g.proc.Wait()
}

// IsLearnGuard tells whether this process was started as a learning run's
// guard.
func IsLearnGuard() bool { return os.Getenv(envLearnGuard) != "" }

// LearnGuard is the guard's whole life; it does not return.
func LearnGuard() {
	name := []byte("bulwark-learn-guard\x00")
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
	// A hangup or ^C of learn's terminal is not the end of learn.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	var cfg guardConfig
	if err := json.Unmarshal([]byte(os.Getenv(envLearnGuard)), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "bulwark: learn guard: bad config: %v\n", err)
		os.Exit(2)
	}
	ids, done := readGuardPipe(os.NewFile(3, "learn"))
	if done {
		os.Exit(0)
	}
	code := 0
	if len(ids) > 0 {
		fmt.Fprintf(os.Stderr, "bulwark: learn ended without finishing; removing its containers: %s\n", strings.Join(ids, " "))
		ctx, cancel := context.WithTimeout(context.Background(), guardRemoveTimeout)
		rm := exec.CommandContext(ctx, "/proc/self/exe", append(append(cfg.Args, "rm", "-f"), ids...)...)
		rm.Env = withoutEnv(os.Environ(), envLearnGuard)
		rm.Stdout = io.Discard
		rm.Stderr = os.Stderr
		if err := rm.Run(); err != nil {
			// A container learn had named but not yet created is
			// "not found": that is fine; anything else was said.
			code = 1
		}
		cancel()
	}
	removeProfileTemps(cfg.Output, cfg.Start)
	os.Exit(code)
}

// readGuardPipe reads learn's messages until the pipe ends: the
// containers named, and whether learn said it was done.
func readGuardPipe(r io.Reader) (ids []string, done bool) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "done":
			done = true
		case strings.HasPrefix(line, "id "):
			ids = append(ids, strings.TrimPrefix(line, "id "))
		}
	}
	return ids, done
}

// removeProfileTemps removes the temporary files learn.Profile.Write makes
// next to output (learn.TempPrefix) that this run may have made: those
// modified since it started.
func removeProfileTemps(output string, start time.Time) {
	if output == "" {
		return
	}
	dir, prefix := filepath.Dir(output), learn.TempPrefix(output)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		m := filepath.Join(dir, e.Name())
		if fi, err := os.Lstat(m); err == nil && fi.Mode().IsRegular() && !fi.ModTime().Before(start) {
			_ = os.Remove(m)
		}
	}
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, key+"=") {
			out = append(out, e)
		}
	}
	return out
}
