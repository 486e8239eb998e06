package seccomp

import (
	"strconv"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLoadThreadFiltersOnlyTheCallingThread(t *testing.T) {
	eperm := uint(unix.EPERM)
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &eperm}},
	}
	for _, tc := range []struct {
		name       string
		thread     bool
		flags      []specs.LinuxSeccompFlag
		wantOther  unix.Errno
		wantCaller unix.Errno
	}{
		{"LoadThread leaves other threads alone", true, nil, 0, unix.EPERM},
		{"LoadThread with TSYNC covers every thread", true, []specs.LinuxSeccompFlag{flagTsync}, unix.EPERM, unix.EPERM},
		{"Load covers every thread", false, nil, unix.EPERM, unix.EPERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := *s
			p.Flags = tc.flags
			var env []string
			if tc.thread {
				env = append(env, envThread+"=1")
			}
			r := runHelper(t, &p, env, "prethread_getcwd", "getcwd")
			if r.loadErr != "" {
				t.Fatalf("load: %s", r.loadErr)
			}
			if got := r.out["prethread_getcwd"]; got != strconv.Itoa(int(tc.wantOther)) {
				t.Errorf("getcwd on another thread: errno %s, want %d\n%s", got, tc.wantOther, r.raw)
			}
			if got := r.out["getcwd"]; got != strconv.Itoa(int(tc.wantCaller)) {
				t.Errorf("getcwd on the loading thread: errno %s, want %d\n%s", got, tc.wantCaller, r.raw)
			}
		})
	}
}
