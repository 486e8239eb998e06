package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	filter, _, err := build(s)
	if err != nil {
		return nil, err
	}
	defer filter.Release()

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
	return out, nil
}
