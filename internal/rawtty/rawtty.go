// Package rawtty switches the caller's terminal to raw mode while a
// container's terminal is relayed through it. In cooked mode the caller's
// line discipline would act on keys meant for the container (Ctrl-C would
// signal the runtime, not the payload; lines would be echoed twice and
// CR/LF translated twice).
//
// Not for the container's own pty: its line discipline belongs to the
// payload, which sets it as it likes.
package rawtty

import "golang.org/x/sys/unix"

// Make puts fd in raw mode, as cfmakeraw(3) does with reads returning
// after one byte, and returns the settings it had. It returns nil, and
// changes nothing, when fd is not a terminal or the change is refused.
func Make(fd int) *unix.Termios {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return nil
	}
	return old
}

// Restore gives fd back the settings Make returned; nil does nothing.
func Restore(fd int, old *unix.Termios) {
	if old != nil {
		_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
	}
}
