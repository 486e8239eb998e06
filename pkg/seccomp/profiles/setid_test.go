package profiles_test

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/bpfvm"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

// TestWithoutSetIDFilesRefusesOnlySetIDModes runs the compiled filter: the
// set-id bits are refused on every path that gives a file its mode, and
// every other mode, and every other call, is decided as before.
func TestWithoutSetIDFilesRefusesOnlySetIDModes(t *testing.T) {
	const (
		allow  = unix.SECCOMP_RET_ALLOW
		eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosys = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	for _, p := range []struct {
		name string
		sc   *specs.LinuxSeccomp
	}{{"default", profiles.Default()}, {"netadmin", profiles.NetAdmin()}} {
		if err := profiles.WithoutSetIDFiles(p.sc); err != nil {
			t.Fatal(err)
		}
		// A second call finds its own rules and changes nothing.
		before := len(p.sc.Syscalls)
		if err := profiles.WithoutSetIDFiles(p.sc); err != nil || len(p.sc.Syscalls) != before {
			t.Fatalf("%s: second call: %v, %d rules, want nil and %d", p.name, err, len(p.sc.Syscalls), before)
		}
		raw, err := seccomp.ExportBPF(p.sc)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := bpfvm.Decode(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			call string
			args [6]uint64
			want uint32
		}{
			{"chmod", [6]uint64{0, 0o755}, allow},
			{"chmod", [6]uint64{0, 0o4755}, eperm},
			{"chmod", [6]uint64{0, 0o2755}, eperm},
			{"chmod", [6]uint64{0, 0o1777}, allow}, // sticky is harmless
			{"fchmod", [6]uint64{3, 0o6755}, eperm},
			{"fchmod", [6]uint64{3, 0o644}, allow},
			{"fchmodat", [6]uint64{3, 0, 0o4711}, eperm},
			{"fchmodat", [6]uint64{3, 0, 0o711}, allow},
			{"fchmodat2", [6]uint64{3, 0, 0o2711, 0}, eperm},
			{"creat", [6]uint64{0, 0o4755}, eperm},
			{"creat", [6]uint64{0, 0o644}, allow},
			{"open", [6]uint64{0, unix.O_CREAT | unix.O_WRONLY, 0o4755}, eperm},
			{"open", [6]uint64{0, unix.O_RDONLY, 0}, allow},
			{"openat", [6]uint64{3, 0, unix.O_CREAT | unix.O_WRONLY, 0o2755}, eperm},
			{"openat", [6]uint64{3, 0, unix.O_CREAT | unix.O_WRONLY, 0o600}, allow},
			{"mknod", [6]uint64{0, unix.S_IFREG | 0o4755, 0}, eperm},
			{"mknodat", [6]uint64{3, 0, unix.S_IFIFO | 0o600, 0}, allow},
			{"openat2", [6]uint64{3, 0, 0, 24}, enosys},
			{"read", [6]uint64{}, allow},
			{"keyctl", [6]uint64{}, eperm},
		} {
			nr, err := libseccomp.GetSyscallFromNameByArch(tc.call, libseccomp.ArchAMD64)
			if err != nil {
				t.Fatalf("syscall %s: %v", tc.call, err)
			}
			got, err := bpfvm.Run(prog, bpfvm.Data{Nr: int32(nr), Arch: unix.AUDIT_ARCH_X86_64, Args: tc.args})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("%s: %s%o: %s, want %s", p.name, tc.call, tc.args[:4], bpfvm.Verdict(got), bpfvm.Verdict(tc.want))
			}
		}
	}
}

func TestWithoutSetIDFilesLeavesRefusedCallsAndNilAlone(t *testing.T) {
	if err := profiles.WithoutSetIDFiles(nil); err != nil {
		t.Errorf("nil (unconfined): %v", err)
	}
	// strict allows no chmod at all: nothing to add, and open stays allowed.
	sc := profiles.Strict()
	if err := profiles.WithoutSetIDFiles(sc); err != nil {
		t.Fatal(err)
	}
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			if n == "chmod" || n == "fchmod" {
				t.Errorf("strict gained a rule for %s: %+v", n, r)
			}
		}
	}
	// A profile with its own conditions on chmod cannot be merged.
	own := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"chmod"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo, Value: 0o644}}},
	}}
	if err := profiles.WithoutSetIDFiles(own); err == nil || !strings.Contains(err.Error(), "chmod") {
		t.Errorf("conditional chmod: %v, want an error naming chmod", err)
	}
}
