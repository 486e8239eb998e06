package userface

import (
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/container"
	"github.com/bulwark-sec/bulwark/pkg/learn"
	"github.com/bulwark-sec/bulwark/pkg/oci"
	"github.com/bulwark-sec/bulwark/pkg/safefile"
)

// RecordForEngine is `bulwark learn-recorder ID`, which create starts for
// an engine's container annotated run.bulwark.learn=PATH: it takes the
// recording filter's listener when start loads it, answers every call
// until the container's last process is gone, and writes the profile to
// PATH (safefile.WriteAtomic: a directory only root can write, a temporary
// file that is never a symlink, renamed over PATH). The filter it records
// under is the config's own seccomp; the profile keeps its refusals and
// names "default" as its base for everything else (a `bulwark run
// --profile PATH`), and its "seccomp" member is a filter an engine takes
// (docker --security-opt seccomp=FILE with that member alone).
//
// It has no terminal: a failure is written next to PATH, as PATH.error.
func RecordForEngine(rt *container.Runtime, id string) error {
	st, err := rt.Load(id)
	if err != nil {
		return err
	}
	if st.Config == nil {
		return fmt.Errorf("container %s: no config in its state", id)
	}
	out := st.Config.Annotations[oci.AnnotationLearn]
	if out == "" {
		return fmt.Errorf("container %s: no %s annotation", id, oci.AnnotationLearn)
	}
	err = recordForEngine(st, out)
	if err != nil {
		_ = safefile.WriteAtomic(out+".error", []byte(err.Error()+"\n"), 0o644)
	}
	return err
}

func recordForEngine(st *container.State, out string) error {
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return fmt.Errorf("learn: the container's init (pid %d): %w", st.Pid, err)
	}
	defer unix.Close(pidfd)
	rec := learn.AttachFor(func() (int, bool) { return st.Pid, true }, 0)
	// The init's end ends the container (its pid namespace, or the
	// engine's delete): then the listener hangs up once the last process
	// under the filter is gone, and Stop returns what was seen.
	pfd := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(pfd, -1); err == nil || !errors.Is(err, unix.EINTR) {
			break
		}
	}
	time.Sleep(100 * time.Millisecond)
	obs, err := rec.Stop()
	if err != nil {
		return err
	}
	var base *specs.LinuxSeccomp
	if st.Config.Linux != nil {
		base = st.Config.Linux.Seccomp
	}
	var cmds [][]string
	if st.Config.Process != nil {
		cmds = [][]string{st.Config.Process.Args}
	}
	p, err := learn.BuildFrom("default", base, obs, nil, "not tried: an engine's container keeps what its config grants", cmds)
	if err != nil {
		return err
	}
	p.SeccompBase = "config"
	b, err := p.JSON()
	if err != nil {
		return err
	}
	return safefile.WriteAtomic(out, b, 0o644)
}
