package bpfvm

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

const (
	ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	retK   = unix.BPF_RET | unix.BPF_K
	eperm  = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	allow  = unix.SECCOMP_RET_ALLOW
	killPr = unix.SECCOMP_RET_KILL_PROCESS
)

// argFilter is what a hand-written seccomp filter looks like: check the
// arch, then the syscall, then the low and high halves of args[1].
var argFilter = []unix.SockFilter{
	stmt(ldAbs, 4),                           // ld [arch]
	jump(jeqK, unix.AUDIT_ARCH_X86_64, 1, 0), // x86_64?
	stmt(retK, killPr),                       // no: kill
	stmt(ldAbs, 0),                           // ld [nr]
	jump(jeqK, unix.SYS_IOCTL, 0, 5),         // ioctl? else allow
	stmt(ldAbs, 24),                          // ld [args[1].lo]
	jump(jeqK, unix.TIOCSTI, 0, 3),           // TIOCSTI? else allow
	stmt(ldAbs, 28),                          // ld [args[1].hi]
	jump(jeqK, 0, 0, 1),                      // upper half zero? (the naive check)
	stmt(retK, eperm),                        // deny
	stmt(retK, allow),                        // allow
}

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name string
		prog []unix.SockFilter
		d    Data
		want uint32
	}{
		{"other syscall allowed", argFilter, Data{Nr: unix.SYS_GETPID, Arch: unix.AUDIT_ARCH_X86_64}, allow},
		{"TIOCSTI denied", argFilter, Data{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, unix.TIOCSTI}}, eperm},
		{"high bits read from the upper word", argFilter, Data{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_X86_64, Args: [6]uint64{0, 0xffffffff00005412}}, allow},
		{"wrong arch killed", argFilter, Data{Nr: unix.SYS_IOCTL, Arch: unix.AUDIT_ARCH_I386}, killPr},
		{"ALU, scratch memory and X", []unix.SockFilter{
			stmt(ldAbs, 16), // A = args[0].lo
			stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, 0xff), // A &= 0xff
			stmt(unix.BPF_ST, 3),                             // M[3] = A
			stmt(unix.BPF_LDX|unix.BPF_MEM, 3),               // X = M[3]
			stmt(unix.BPF_LD|unix.BPF_IMM, 0x10),             // A = 0x10
			stmt(unix.BPF_ALU|unix.BPF_ADD|unix.BPF_X, 0),    // A += X
			jump(unix.BPF_JMP|unix.BPF_JGT|unix.BPF_K, 0x20, 0, 1),
			stmt(retK, eperm),
			stmt(unix.BPF_RET|unix.BPF_A, 0), // ret A
		}, Data{Args: [6]uint64{0x1201}}, 0x11},
		{"jset and ja", []unix.SockFilter{
			stmt(ldAbs, 16),
			jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, 0x4, 0, 1),
			stmt(unix.BPF_JMP|unix.BPF_JA, 1),
			stmt(retK, allow),
			stmt(retK, eperm),
		}, Data{Args: [6]uint64{0x6}}, eperm},
		{"division by zero returns 0 like the kernel", []unix.SockFilter{
			stmt(unix.BPF_LD|unix.BPF_IMM, 7),
			stmt(unix.BPF_ALU|unix.BPF_DIV|unix.BPF_X, 0),
			stmt(retK, allow),
		}, Data{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Run(tc.prog, tc.d)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Run = %#x (%s), want %#x (%s)", got, Verdict(got), tc.want, Verdict(tc.want))
			}
		})
	}
}

func TestRunRefusesWhatTheKernelRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		prog []unix.SockFilter
		want string
	}{
		{"empty", nil, "0 instructions"},
		{"load past seccomp_data", []unix.SockFilter{stmt(ldAbs, 64), stmt(retK, allow)}, "outside seccomp_data"},
		{"unaligned load", []unix.SockFilter{stmt(ldAbs, 2), stmt(retK, allow)}, "unaligned"},
		{"byte load", []unix.SockFilter{stmt(unix.BPF_LD|unix.BPF_B|unix.BPF_ABS, 0), stmt(retK, allow)}, "32-bit absolute"},
		{"jump past the end", []unix.SockFilter{jump(jeqK, 0, 5, 5), stmt(retK, allow)}, "past the end"},
		{"no return", []unix.SockFilter{stmt(ldAbs, 0)}, "without a return"},
		{"scratch out of range", []unix.SockFilter{stmt(unix.BPF_ST, 16), stmt(retK, allow)}, "scratch memory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(tc.prog, Data{})
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestDecodeAndDisassemble(t *testing.T) {
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&argFilter[0])), len(argFilter)*8)
	prog, err := Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != len(argFilter) || prog[6] != argFilter[6] {
		t.Fatalf("Decode round trip: got %v", prog)
	}
	if _, err := Decode(raw[:7]); !errors.Is(err, ErrInvalid) {
		t.Errorf("Decode of 7 bytes: %v, want ErrInvalid", err)
	}
	lines := Disassemble(prog)
	for i, want := range map[int]string{
		0: "ld [arch]", 1: "jeq #0xc000003e, +1, +0", 2: "ret SCMP_ACT_KILL_PROCESS",
		5: "ld [args[1].lo]", 7: "ld [args[1].hi]", 9: "ret SCMP_ACT_ERRNO(EPERM)", 10: "ret SCMP_ACT_ALLOW",
	} {
		if !strings.HasSuffix(lines[i], ": "+want) {
			t.Errorf("line %d = %q, want %q", i, lines[i], want)
		}
	}
}
