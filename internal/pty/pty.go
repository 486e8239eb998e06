// Package pty opens a new pseudo-terminal pair: the one way the runtime,
// the container's init and the VM agent make a terminal for a process.
//
// The threat: the slave's name, /dev/pts/N, resolves in a /dev/pts that
// may be a container's to change. An exec into a running container makes
// its terminal in the container's mount namespace, where a payload with
// CAP_SYS_ADMIN in its user namespace can mount over /dev/pts, or leave a
// FIFO or a symlink at the name the next pty will get. Opening the slave
// by that path would give the exec'd process stdio the payload reads,
// while the engine's master talks to nobody: a password typed into
// `docker exec -it` would go to the payload. Open takes the slave from
// the master itself (TIOCGPTPEER), so it is the master's peer whatever
// the name resolves to. Only where that ioctl fails (kernels before 4.13)
// does it open the name, and then it keeps the result only if it is the
// pts device with the master's number.
//
// Which multiplexer the master comes from (so which devpts instance the
// pty lives in, and what its name means to the process) stays the
// caller's choice; so do the terminal's modes, size and owner.
package pty

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Open opens a new pty through the multiplexer at ptmx (a devpts
// instance's ptmx, or the /dev/ptmx that leads to one) and returns its
// unlocked master, its slave and the slave's name: /dev/pts/N, as a
// process that has that devpts instance at /dev/pts finds it. Both files
// are close-on-exec and opened O_NOCTTY: neither becomes the caller's
// controlling terminal.
func Open(ptmx string) (master, slave *os.File, name string, err error) {
	mfd, err := unix.Open(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open %s: %w", ptmx, err)
	}
	master = os.NewFile(uintptr(mfd), ptmx)
	defer func() {
		if err != nil {
			master.Close()
		}
	}()
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return nil, nil, "", fmt.Errorf("unlockpt on %s: %w", ptmx, err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return nil, nil, "", fmt.Errorf("ptsname on %s: %w", ptmx, err)
	}
	name = "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	sfd, err := openPeer(mfd, name, n)
	if err != nil {
		return nil, nil, "", err
	}
	return master, os.NewFile(uintptr(sfd), name), name, nil
}

// openPeer opens the slave of the master mfd, whose number is n and name
// name.
func openPeer(mfd int, name string, n uint32) (int, error) {
	const flags = unix.O_RDWR | unix.O_NOCTTY | unix.O_CLOEXEC
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(mfd), unix.TIOCGPTPEER, flags)
	if errno == 0 {
		return int(r), nil
	}
	sfd, err := unix.Open(name, flags, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s (TIOCGPTPEER: %v): %w", name, errno, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		unix.Close(sfd)
		return -1, fmt.Errorf("fstat %s: %w", name, err)
	}
	if !isSlave(st.Mode, st.Rdev, n) {
		unix.Close(sfd)
		return -1, fmt.Errorf("%s is not the slave of the pty just opened (mode %#o, device %d:%d): refused", name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return sfd, nil
}

// isSlave reports whether a file of this mode and device is the Unix98
// pty slave number n (majors 136 to 143, 256 minors each).
func isSlave(mode uint32, rdev uint64, n uint32) bool {
	const firstMajor = 136
	return mode&unix.S_IFMT == unix.S_IFCHR &&
		unix.Major(rdev) == firstMajor+n/256 && unix.Minor(rdev) == n%256
}
