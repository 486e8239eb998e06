package initproto

import (
	"errors"
	"io"
	"os"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func specWith(ns ...specs.LinuxNamespace) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: ns}}
}

func TestCreateBootstrap(t *testing.T) {
	oom := -500
	timens := specWith(specs.LinuxNamespace{Type: specs.TimeNamespace}, specs.LinuxNamespace{Type: specs.PIDNamespace})
	timens.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 7, Nanosecs: 3}, "boottime": {Secs: -2}}
	withOOM := specWith(specs.LinuxNamespace{Type: specs.UserNamespace})
	withOOM.Process.OOMScoreAdj = &oom
	offsetsWithoutTimens := specWith(specs.LinuxNamespace{Type: specs.MountNamespace})
	offsetsWithoutTimens.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
	for _, tc := range []struct {
		name    string
		spec    *specs.Spec
		netnsFd int
		want    string
	}{
		{"no linux section", &specs.Spec{Process: &specs.Process{}}, -1, "clone 0\nend\n"},
		{"new namespaces become clone flags", specWith(
			specs.LinuxNamespace{Type: specs.PIDNamespace}, specs.LinuxNamespace{Type: specs.MountNamespace},
			specs.LinuxNamespace{Type: specs.IPCNamespace}, specs.LinuxNamespace{Type: specs.UTSNamespace},
			specs.LinuxNamespace{Type: specs.UserNamespace}), -1,
			"clone 3c020000\nend\n"},
		{"a path is joined", specWith(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/a"},
			specs.LinuxNamespace{Type: specs.MountNamespace}), -1,
			"join network /run/netns/a\nclone 20000\nend\n"},
		{"a network namespace made ahead is joined by fd", specWith(specs.LinuxNamespace{Type: specs.NetworkNamespace}), 7,
			"join network /proc/self/fd/7\nclone 0\nend\n"},
		{"without a made one the network namespace is cloned", specWith(specs.LinuxNamespace{Type: specs.NetworkNamespace}), -1,
			"clone 40000000\nend\n"},
		{"a new cgroup namespace is left to the init", specWith(specs.LinuxNamespace{Type: specs.CgroupNamespace}), -1,
			"clone 0\nend\n"},
		{"a cgroup namespace by path is joined", specWith(specs.LinuxNamespace{Type: specs.CgroupNamespace, Path: "/proc/1/ns/cgroup"}), -1,
			"join cgroup /proc/1/ns/cgroup\nclone 0\nend\n"},
		{"oom score first", withOOM, -1, "oom -500\nclone 10000000\nend\n"},
		{"time offsets, sorted, with a new time namespace", timens, -1,
			"clone 20000080\ntimens boottime -2 0\ntimens monotonic 7 3\nend\n"},
		{"no time offsets without a new time namespace", offsetsWithoutTimens, -1, "clone 20000\nend\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CreateBootstrap(tc.spec, tc.netnsFd).Script(); got != tc.want {
				t.Fatalf("script:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestExecBootstrap(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec *specs.Spec
		want string
	}{
		{"no config", nil, "clone 0\nend\n"},
		{"every namespace of the init, new or joined, by its /proc file", specWith(
			specs.LinuxNamespace{Type: specs.UserNamespace}, specs.LinuxNamespace{Type: specs.MountNamespace},
			specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/run/netns/a"}, specs.LinuxNamespace{Type: specs.CgroupNamespace},
			specs.LinuxNamespace{Type: specs.TimeNamespace}),
			"join user /proc/42/ns/user\njoin mount /proc/42/ns/mnt\njoin network /proc/42/ns/net\n" +
				"join cgroup /proc/42/ns/cgroup\njoin time /proc/42/ns/time\nclone 0\nend\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ExecBootstrap(tc.spec, 42, nil).Script(); got != tc.want {
				t.Fatalf("script:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestReadReply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		want    Reply
		wantErr string
	}{
		{"maps", "maps 12\n", MapsRequest{12}, ""},
		{"pid", "pid 34\n", InitPid{34}, ""},
		{"error", "error nsenter: setns /proc/1/ns/mnt: Operation not permitted\n", nil, "nsenter: setns /proc/1/ns/mnt: Operation not permitted"},
		{"bad pid", "pid x\n", nil, `sync socket: bad line "pid x"`},
		{"unknown line", "hello\n", nil, `sync socket: unexpected "hello"`},
		{"eof", "pid 3", nil, "EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			r, w := os.NewFile(uintptr(fds[0]), "r"), os.NewFile(uintptr(fds[1]), "w")
			defer r.Close()
			if tc.wantErr == "EOF" {
				// The constructor died in the middle of a line.
				w.WriteString(tc.in)
				w.Close()
			} else {
				w.WriteString(tc.in + "pid 99\n")
				defer w.Close()
			}
			got, err := ReadReply(r)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ReadReply(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
				}
				// Nothing beyond the line was consumed.
				if next, err := ReadReply(r); err != nil || next != (InitPid{99}) {
					t.Fatalf("next line: %#v, %v", next, err)
				}
				return
			}
			if tc.wantErr == "EOF" {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("ReadReply(%q) = %#v, %v; want io.EOF", tc.in, got, err)
				}
				return
			}
			if err == nil || err.Error() != tc.wantErr {
				t.Fatalf("ReadReply(%q) = %#v, %v; want error %q", tc.in, got, err, tc.wantErr)
			}
			var ce *ConstructorError
			if errors.As(err, &ce) != (tc.name == "error") {
				t.Fatalf("ReadReply(%q): %T, a constructor error only for an error line", tc.in, err)
			}
		})
	}
}
