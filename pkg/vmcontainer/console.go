package vmcontainer

import (
	"fmt"
	"net"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/pty"
	"github.com/bulwark-sec/bulwark/internal/rawtty"
)

// OpenConsole is the host's half of exec --console-socket into a VM
// container. An engine expects runc's protocol: a pty master in SCM_RIGHTS
// on the socket, the slave's name as the payload. The process's real
// terminal is a pty of the guest (its line discipline, echo and job control
// are the guest kernel's), so this one is only a pipe the engine can
// resize: its slave, returned, is the relay's stdio, in raw mode so that
// no byte is translated or echoed twice on the host. Its size starts at
// size when given. The caller closes the slave; the master is the
// engine's alone once sent.
func OpenConsole(socket string, size *specs.Box) (*os.File, error) {
	master, slave, name, err := pty.Open("/dev/ptmx")
	if err != nil {
		return nil, fmt.Errorf("--console-socket: a pty on the host: %w", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	sfd := int(slave.Fd())
	ok := false
	defer func() {
		if !ok {
			slave.Close()
		}
	}()
	if rawtty.Make(sfd) == nil {
		return nil, fmt.Errorf("--console-socket: raw mode on %s refused", name)
	}
	if size != nil && size.Height > 0 && size.Width > 0 {
		if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}); err != nil {
			return nil, fmt.Errorf("--console-socket: set the size of %s: %w", name, err)
		}
	}
	c, err := net.Dial("unix", socket)
	if err != nil {
		return nil, fmt.Errorf("--console-socket %s: %w", socket, err)
	}
	defer c.Close()
	rights := unix.UnixRights(mfd)
	if _, _, err := c.(*net.UnixConn).WriteMsgUnix([]byte(name), rights, nil); err != nil {
		return nil, fmt.Errorf("--console-socket %s: sending the pty master: %w", socket, err)
	}
	ok = true
	return slave, nil
}
