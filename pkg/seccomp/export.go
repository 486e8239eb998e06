package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/seccomp/bpfvm"
)

// ExportBPF returns the classic BPF program that Load would install for s,
// as the raw array of struct sock_filter (native byte order), without
// loading anything. It is the ground truth for tools that explain or test a
// profile: what libseccomp generated, not what the JSON appears to say.
func ExportBPF(s *specs.LinuxSeccomp) ([]byte, error) {
	if s == nil {
		return nil, errors.New("seccomp: ExportBPF called with a nil profile")
	}
	if err := Validate(s); err != nil {
		return nil, err
	}
	if disabled(s) {
		return nil, errors.New("seccomp: profile has neither defaultAction nor syscalls, so no filter is installed and there is nothing to export")
	}
	return exportBuilt(s)
}

// exportBuilt is ExportBPF for a profile the caller has checked.
func exportBuilt(s *specs.LinuxSeccomp) ([]byte, error) {
	filter, _, si, err := build(s)
	if err != nil {
		return nil, err
	}
	defer filter.Release()
	return exportFilter(filter, s, si)
}

// exportFilter returns filter's program with the stand-in action (if si is
// not nil) rewritten to the default and the ENOSYS stub in front.
func exportFilter(filter *libseccomp.ScmpFilter, s *specs.LinuxSeccomp, si *standIn) ([]byte, error) {
	// libseccomp 2.5 only exports to an fd; a memfd keeps the program off
	// the filesystem and needs no cleanup beyond the close.
	fd, err := unix.MemfdCreate("bulwark-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("exporting seccomp BPF: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "bulwark-seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("exporting seccomp BPF (libseccomp %s): %w", Version(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("exporting seccomp BPF: %w", err)
	}
	out, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("exporting seccomp BPF: reading back the program: %w", err)
	}
	if si != nil {
		if out, err = patchStandIn(out, si); err != nil {
			return nil, err
		}
	}
	return enosysStub(s, out)
}

// auditArch is the AUDIT_ARCH_* value the kernel puts in seccomp_data.arch
// for native syscalls of the hosts Bulwark is built for.
var auditArch = map[string]uint32{
	"amd64": unix.AUDIT_ARCH_X86_64,
	"arm64": unix.AUDIT_ARCH_AARCH64,
}

// Simulate runs the filter Load would install for s over one native syscall
// with the given arguments, in user space (pkg/seccomp/bpfvm), and returns
// the SECCOMP_RET_* verdict the kernel would reach. Nothing is loaded.
func Simulate(s *specs.LinuxSeccomp, name string, args [6]uint64) (uint32, error) {
	arch, ok := auditArch[runtime.GOARCH]
	if !ok {
		return 0, fmt.Errorf("seccomp: simulating filters is not supported on %s", runtime.GOARCH)
	}
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return 0, fmt.Errorf("syscall %q is not known to libseccomp %s: %w", name, Version(), ErrUnknownSyscall)
	}
	raw, err := ExportBPF(s)
	if err != nil {
		return 0, err
	}
	prog, err := bpfvm.Decode(raw)
	if err != nil {
		return 0, fmt.Errorf("seccomp: decoding libseccomp's program: %w", err)
	}
	return bpfvm.Run(prog, bpfvm.Data{Nr: int32(nr), Arch: arch, Args: args})
}
