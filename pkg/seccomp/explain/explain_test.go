package explain_test

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/bpfvm"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/explain"
	"github.com/bulwark-sec/bulwark/pkg/seccomp/profiles"
)

func uptr(v uint) *uint { return &v }

func tiocsti(op specs.LinuxSeccompOperator) specs.LinuxSeccompArg {
	if op == specs.OpMaskedEqual {
		return specs.LinuxSeccompArg{Index: 1, Op: op, Value: 0xffffffff, ValueTwo: unix.TIOCSTI}
	}
	return specs.LinuxSeccompArg{Index: 1, Op: op, Value: unix.TIOCSTI}
}

// Hand-made profiles that pin down each libseccomp semantic Evaluate models.
var (
	// The "naive" ioctl rule: a 64-bit equality on the command.
	naiveIoctl = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"ioctl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{tiocsti(specs.OpEqualTo)}},
	}}
	// An unconditional allow after a conditional deny: the deny is dropped.
	shadowed = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38), Syscalls: []specs.LinuxSyscall{
		{Names: []string{"ioctl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{tiocsti(specs.OpMaskedEqual)}},
		{Names: []string{"ioctl"}, Action: specs.ActAllow},
	}}
	// Overlapping conditional rules listed allow-first: the stricter wins.
	overlap = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(38), Syscalls: []specs.LinuxSyscall{
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpGreaterThan, Value: 0x10}}},
		{Names: []string{"personality"}, Action: specs.ActTrap, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpGreaterThan, Value: 0x100}}},
		// Repeated index: OR-ed (runc's meaning), not AND-ed.
		{Names: []string{"getpriority"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 0, Op: specs.OpEqualTo, Value: 2}}},
		// Same action as the default: dropped.
		{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: uptr(38)},
	}}
	// Docker's default action (EPERM) with the floor's TIOCSTI denial
	// beside an always-true allow, and an unconditional rule equal to the
	// default before a conditional allow: both decide, so both are kept.
	sameAsDefault = &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"ioctl"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpGreaterEqual, Value: 0}}},
		{Names: []string{"ioctl"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{tiocsti(specs.OpMaskedEqual)}},
		{Names: []string{"personality"}, Action: specs.ActErrno},
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}}},
		{Names: []string{"read"}, Action: specs.ActAllow},
	}}
	// Kill by default and no clone3 rule: the loader adds clone3 -> ENOSYS.
	killDefault = &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"read"}, Action: specs.ActAllow},
	}}
)

type call struct {
	name string
	args [6]uint64
}

func c(name string, args ...uint64) call {
	var a [6]uint64
	copy(a[:], args)
	return call{name, a}
}

// TestEvaluateMatchesBPF is the cross-check: for every call in the table,
// Evaluate's answer must equal what libseccomp's exported program returns
// when run over the same seccomp_data, and must equal the expected verdict.
func TestEvaluateMatchesBPF(t *testing.T) {
	eperm := unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	enosys := unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	eafnosupport := unix.SECCOMP_RET_ERRNO | uint32(unix.EAFNOSUPPORT)
	const allow = unix.SECCOMP_RET_ALLOW
	const kill = unix.SECCOMP_RET_KILL_PROCESS
	nsUser := uint64(unix.CLONE_NEWUSER)
	const sigchld = uint64(unix.SIGCHLD)
	threadFlags := uint64(unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_SYSVSEM | unix.CLONE_THREAD)

	tests := []struct {
		profile string
		s       *specs.LinuxSeccomp
		call    call
		want    uint32
	}{
		{"default", profiles.Default(), c("getpid"), allow},
		{"default", profiles.Default(), c("arch_prctl", 0x1002 /* ARCH_SET_FS */), allow},
		{"default", profiles.Default(), c("clone3"), enosys},
		{"default", profiles.Default(), c("faccessat2"), allow},
		{"default", profiles.Default(), c("modify_ldt"), enosys},
		{"default", profiles.Default(), c("ioctl", 0, unix.TIOCSTI), eperm},
		{"default", profiles.Default(), c("ioctl", 0, 0xffffffff00005412), eperm},
		{"default", profiles.Default(), c("ioctl", 0, 0x100000000|unix.TIOCLINUX), eperm},
		{"default", profiles.Default(), c("ioctl", 0, unix.TCGETS), allow},
		{"default", profiles.Default(), c("ioctl", 0, 0xffffffff00005401), allow},
		{"default", profiles.Default(), c("clone", threadFlags), allow},
		{"default", profiles.Default(), c("clone", sigchld), allow},
		{"default", profiles.Default(), c("clone", sigchld|nsUser), eperm},
		{"default", profiles.Default(), c("clone", unix.CLONE_NEWTIME), eperm},
		{"default", profiles.Default(), c("unshare", nsUser), eperm},
		{"default", profiles.Default(), c("unshare", unix.CLONE_NEWNET|unix.CLONE_NEWNS), eperm},
		{"default", profiles.Default(), c("unshare", unix.CLONE_FILES), allow},
		{"default", profiles.Default(), c("setns", 3, 0), eperm},
		{"default", profiles.Default(), c("socket", unix.AF_INET, unix.SOCK_STREAM), allow},
		{"default", profiles.Default(), c("socket", unix.AF_NETLINK, unix.SOCK_RAW), allow},
		{"default", profiles.Default(), c("socket", unix.AF_PACKET, unix.SOCK_RAW), eafnosupport},
		{"default", profiles.Default(), c("socket", unix.AF_UNSPEC), eafnosupport},
		{"default", profiles.Default(), c("socket", unix.AF_VSOCK), eafnosupport},
		{"default", profiles.Default(), c("socket", 0x100000002), eafnosupport},
		{"default", profiles.Default(), c("socketpair", unix.AF_UNIX), allow},
		{"default", profiles.Default(), c("socketpair", unix.AF_INET), eafnosupport},
		{"default", profiles.Default(), c("personality", 8), allow},
		{"default", profiles.Default(), c("personality", 0xffffffff), allow},
		{"default", profiles.Default(), c("personality", 0x0040000), enosys},
		{"default", profiles.Default(), c("ptrace"), eperm},
		{"default", profiles.Default(), c("keyctl"), eperm},
		{"default", profiles.Default(), c("bpf"), eperm},
		{"default", profiles.Default(), c("io_uring_setup"), eperm},
		{"default", profiles.Default(), c("mount"), eperm},
		{"default", profiles.Default(), c("open_by_handle_at"), eperm},
		{"default", profiles.Default(), c("kexec_load"), eperm},
		{"default", profiles.Default(), c("sethostname"), enosys},
		{"strict", profiles.Strict(), c("getppid"), allow},
		{"strict", profiles.Strict(), c("socket", unix.AF_INET), kill},
		{"strict", profiles.Strict(), c("openat", 0, 0, unix.O_RDONLY|unix.O_CLOEXEC), allow},
		{"strict", profiles.Strict(), c("openat", 0, 0, unix.O_WRONLY|unix.O_CREAT), allow},
		{"strict", profiles.Strict(), c("access", 0, 0), allow},
		{"strict", profiles.Strict(), c("ioctl", 1, unix.TCGETS), allow},
		{"strict", profiles.Strict(), c("ioctl", 1, 0xffffffff00005401), allow},
		{"strict", profiles.Strict(), c("ioctl", 1, unix.TIOCSTI), kill},
		{"strict", profiles.Strict(), c("socket", unix.AF_UNIX, unix.SOCK_STREAM), eperm},
		{"strict", profiles.Strict(), c("socket", unix.AF_INET6, unix.SOCK_DGRAM), kill},
		{"strict", profiles.Strict(), c("socketpair", unix.AF_UNIX), kill},
		{"strict", profiles.Strict(), c("vfork"), kill},
		{"strict", profiles.Strict(), c("clone", threadFlags), allow},
		{"strict", profiles.Strict(), c("clone", sigchld), eperm},
		{"strict", profiles.Strict(), c("clone", threadFlags|unix.CLONE_NEWNET), eperm},
		{"strict", profiles.Strict(), c("clone3"), enosys},
		{"strict", profiles.Strict(), c("prlimit64", 0, unix.RLIMIT_NOFILE, 0, 0xc000), allow},
		{"strict", profiles.Strict(), c("prlimit64", 0, unix.RLIMIT_NOFILE, 0xc000, 0), eperm},
		{"strict", profiles.Strict(), c("prlimit64", 1, unix.RLIMIT_NOFILE, 0, 0xc000), kill},
		{"strict", profiles.Strict(), c("fork"), kill},
		{"naive", naiveIoctl, c("ioctl", 0, unix.TIOCSTI), eperm},
		{"naive", naiveIoctl, c("ioctl", 0, 0xffffffff00005412), allow},
		{"shadowed", shadowed, c("ioctl", 0, unix.TIOCSTI), allow},
		{"overlap", overlap, c("personality", 0x20), allow},
		{"overlap", overlap, c("personality", 0x200), unix.SECCOMP_RET_TRAP},
		{"overlap", overlap, c("personality", 0x1), enosys},
		{"overlap", overlap, c("getpriority", 1), allow},
		{"overlap", overlap, c("getpriority", 2), allow},
		{"overlap", overlap, c("getpriority", 3), enosys},
		{"overlap", overlap, c("getpid"), enosys},
		{"same", sameAsDefault, c("ioctl", 0, unix.TIOCSTI), eperm},
		{"same", sameAsDefault, c("ioctl", 0, 0xffffffff00005412), eperm},
		{"same", sameAsDefault, c("ioctl", 0, unix.TCGETS), allow},
		{"same", sameAsDefault, c("personality", 0), eperm},
		{"same", sameAsDefault, c("read"), allow},
		{"kill", killDefault, c("read"), allow},
		{"kill", killDefault, c("clone3"), enosys},
		{"kill", killDefault, c("write"), kill},
	}
	progs := map[string][]unix.SockFilter{}
	for _, tc := range tests {
		t.Run(tc.profile+"/"+tc.call.name, func(t *testing.T) {
			prog, ok := progs[tc.profile]
			if !ok {
				raw, err := seccomp.ExportBPF(tc.s)
				if err != nil {
					t.Fatalf("ExportBPF(%s): %v", tc.profile, err)
				}
				if prog, err = bpfvm.Decode(raw); err != nil {
					t.Fatal(err)
				}
				progs[tc.profile] = prog
			}
			nr, err := libseccomp.GetSyscallFromNameByArch(tc.call.name, libseccomp.ArchAMD64)
			if err != nil {
				t.Fatalf("syscall %s: %v", tc.call.name, err)
			}
			got, err := bpfvm.Run(prog, bpfvm.Data{Nr: int32(nr), Arch: unix.AUDIT_ARCH_X86_64, Args: tc.call.args})
			if err != nil {
				t.Fatalf("bpfvm.Run: %v", err)
			}
			ev := explain.Evaluate(tc.s, tc.call.name, tc.call.args)
			if got != tc.want {
				t.Errorf("BPF says %s for %s%x, want %s", bpfvm.Verdict(got), tc.call.name, tc.call.args[:2], bpfvm.Verdict(tc.want))
			}
			if ev.Kernel() != got {
				t.Errorf("Evaluate says %s (%s), BPF says %s for %s%x", bpfvm.Verdict(ev.Kernel()), ev.Why(nil), bpfvm.Verdict(got), tc.call.name, tc.call.args[:2])
			}
		})
	}
}

// TestWrongArchIsKilled: a 32-bit int 0x80 call reaches the filter with
// AUDIT_ARCH_I386, which the default profile does not cover.
func TestWrongArchIsKilled(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *specs.LinuxSeccomp
		arch uint32
		want uint32
	}{
		{"default i386", profiles.Default(), unix.AUDIT_ARCH_I386, unix.SECCOMP_RET_KILL_PROCESS},
		{"strict i386", profiles.Strict(), unix.AUDIT_ARCH_I386, unix.SECCOMP_RET_KILL_PROCESS},
		{"default x32 getpid allowed", profiles.Default(), unix.AUDIT_ARCH_X86_64, unix.SECCOMP_RET_ALLOW},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := seccomp.ExportBPF(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			prog, _ := bpfvm.Decode(raw)
			nr := int32(unix.SYS_GETPID)
			if tc.arch == unix.AUDIT_ARCH_X86_64 {
				nr |= 0x40000000 // __X32_SYSCALL_BIT
			} else {
				nr = 20 // getpid on i386
			}
			got, err := bpfvm.Run(prog, bpfvm.Data{Nr: nr, Arch: tc.arch})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %s, want %s", bpfvm.Verdict(got), bpfvm.Verdict(tc.want))
			}
		})
	}
}

func TestWhy(t *testing.T) {
	tests := []struct {
		name    string
		s       *specs.LinuxSeccomp
		reasons []string
		call    call
		want    string
	}{
		{"rule with reason", profiles.Default(), profiles.Reasons("default"), c("ioctl", 0, 0xffffffff00005412),
			"args[1] & 0xffffffff == 0x5412 (TIOCSTI: pushes input into the terminal of another process)"},
		{"default action", profiles.Default(), nil, c("modify_ldt"), "by the default action"},
		{"rule folded into the default keeps its reason", profiles.Default(), profiles.Reasons("default"), c("clone3"), "rule #1 says the same (clone3's flags are in memory"},
		{"clone3 compat", killDefault, nil, c("clone3"), "Bulwark's clone3 rule"},
		{"shadowed rules reported", shadowed, nil, c("ioctl", 0, unix.TIOCSTI), "rules [0] for ioctl have argument conditions but are ignored"},
		{"no filter", nil, nil, c("mount"), "no seccomp filter"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := explain.Evaluate(tc.s, tc.call.name, tc.call.args).Why(tc.reasons)
			if !contains(got, tc.want) {
				t.Errorf("Why() = %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
