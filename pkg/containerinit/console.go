package containerinit

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/initproto"
	"github.com/bulwark-sec/bulwark/internal/pty"
)

// setupConsole opens a pty inside the container (its own devpts instance),
// makes the slave our controlling terminal and stdio, and hands the master
// out: to --console-socket when given, else back to the runtime.
func setupConsole(conn *initproto.Conn, cfg *initproto.InitConfig) error {
	// An exec's /dev/pts is the container's to change: pty.Open takes
	// the slave from the master, not from the name.
	master, slaveFile, slavePath, err := pty.Open("/dev/ptmx")
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	slave := int(slaveFile.Fd())
	defer slaveFile.Close()
	// Without ONLCR a payload's "\n" reaches the engine as written, not as
	// "\r\n" (what runc does: logs of a terminal container read the same
	// as those of one without).
	tio, err := unix.IoctlGetTermios(slave, unix.TCGETS)
	if err == nil {
		tio.Oflag &^= unix.ONLCR
		err = unix.IoctlSetTermios(slave, unix.TCSETS, tio)
	}
	if err != nil {
		return fmt.Errorf("console: clear ONLCR on %s: %w", slavePath, err)
	}
	// The terminal belongs to the user the process runs as, as in runc
	// (only the owner; the group stays devpts's gid= option): else a
	// non-root payload cannot reopen its own tty (/dev/tty, tty(1),
	// login shells). It is a node of the container's own devpts.
	// EINVAL (a uid the user namespace does not map) and EPERM leave it
	// root's, as runc leaves it, rather than fail the container.
	if err := unix.Fchown(slave, int(cfg.Process.User.UID), -1); err != nil && err != unix.EINVAL && err != unix.EPERM {
		return fmt.Errorf("console: chown %s to process.user.uid %d: %w", slavePath, cfg.Process.User.UID, err)
	}
	if sz := cfg.Process.ConsoleSize; sz != nil {
		_ = unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(sz.Height), Col: uint16(sz.Width)})
	}
	if cfg.ConsoleFd >= 0 {
		// runc's protocol: the pty master in SCM_RIGHTS, its name as the payload.
		err = unix.Sendmsg(cfg.ConsoleFd, []byte(slavePath), unix.UnixRights(mfd), nil, 0)
		unix.Close(cfg.ConsoleFd)
		if err != nil {
			return fmt.Errorf("console: send to --console-socket: %w", err)
		}
	} else if err := conn.Send(initproto.Console{}, mfd); err != nil {
		return err
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("console: dup pty to fd %d: %w", i, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("console: make controlling terminal: %w", err)
	}
	return nil
}
