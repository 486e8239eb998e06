package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// listenerTimeout bounds how long a create can hang on a seccomp agent that
// accepts connections but never reads. The container is paused on its first
// notified syscall until the agent has the fd, so a stuck agent would
// otherwise stall the runtime forever.
const listenerTimeout = 10 * time.Second

// SendToListener hands a seccomp notify fd to the agent listening on the
// unix socket at listenerPath, following the runtime-spec's protocol: one
// SOCK_STREAM connection, one message whose body is the JSON container
// process state and whose SCM_RIGHTS carries the fd, then close.
//
// st.Fds names the fds in the message. If it is empty, a copy of st with
// Fds = ["seccompFd"] is sent; st itself is never modified.
func SendToListener(listenerPath string, fd int, st *specs.ContainerProcessState) error {
	if st == nil {
		return errors.New("seccomp listener: nil container process state")
	}
	if fd < 0 {
		return fmt.Errorf("seccomp listener %s: invalid notify fd %d", listenerPath, fd)
	}
	msg := *st
	switch len(msg.Fds) {
	case 0:
		msg.Fds = []string{specs.SeccompFdName}
	case 1:
	default:
		return fmt.Errorf("seccomp listener %s: state names %d fds %v but exactly one (the seccomp fd) is sent", listenerPath, len(msg.Fds), msg.Fds)
	}
	body, err := json.Marshal(&msg)
	if err != nil {
		return fmt.Errorf("seccomp listener %s: encoding container process state: %w", listenerPath, err)
	}

	d := net.Dialer{Timeout: listenerTimeout}
	c, err := d.Dial("unix", listenerPath)
	if err != nil {
		return fmt.Errorf("failed to connect with seccomp agent at %s (linux.seccomp.listenerPath): %w", listenerPath, err)
	}
	conn := c.(*net.UnixConn)
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(listenerTimeout)); err != nil {
		return fmt.Errorf("seccomp listener %s: %w", listenerPath, err)
	}
	n, oobn, err := conn.WriteMsgUnix(body, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("sending seccomp fd to agent at %s: %w", listenerPath, err)
	}
	if oobn == 0 {
		return fmt.Errorf("sending seccomp fd to agent at %s: the kernel did not take the SCM_RIGHTS data", listenerPath)
	}
	// A stream socket may take a large state in pieces; the fd travelled
	// with the first piece, the rest is plain data.
	if n < len(body) {
		if _, err := conn.Write(body[n:]); err != nil {
			return fmt.Errorf("sending container state to agent at %s: %w", listenerPath, err)
		}
	}
	return nil
}
