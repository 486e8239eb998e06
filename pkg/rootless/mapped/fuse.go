package mapped

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"

	"golang.org/x/sys/unix"
)

// opFuse is the helper that becomes fuse-overlayfs.
const opFuse = "fuse-overlayfs"

// fuseDevFd is the /dev/fuse connection's fd in the helper and then in
// fuse-overlayfs (after the sync pipe, 3).
const fuseDevFd = 4

type fuseArg struct {
	Bin     string `json:"bin"`
	Options string `json:"options"`
}

// StartFuseOverlay starts bin (fuse-overlayfs) as root of a user
// namespace with the caller's whole rootless mapping, serving dev, a
// /dev/fuse connection a container's init mounted at its rootfs, with
// overlayfs's lowerdir, upperdir and workdir options. In that namespace a
// request's ids, which the kernel gives in the container's namespace, are
// the same host ids, so the files it creates and copies up keep the
// container's owners. It runs in a session of its own (a terminal's ^C is
// the payload's), its stderr to log. Its life is the connection's, not the
// caller's: fuse-overlayfs exits when the kernel ends the connection,
// which it does when the container's mount namespace, the mount's only
// holder, goes. The returned process leads its session and process group.
func StartFuseOverlay(bin, options string, dev, log *os.File) (*os.Process, error) {
	// The parent-death signal covers the wait for the maps only: the
	// exec as the namespace's root clears it.
	cmd, err := startHelper(opFuse, fuseArg{Bin: bin, Options: options}, func(cmd *exec.Cmd) error {
		cmd.Stdout, cmd.Stderr = log, log
		cmd.ExtraFiles = append(cmd.ExtraFiles, dev)
		cmd.SysProcAttr.Setsid = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cmd.Process, nil
}

// serveFuse is the helper's second stage for opFuse: as the namespace's
// root, it becomes fuse-overlayfs on the connection it inherited.
func serveFuse(arg string) {
	var a fuseArg
	if err := json.Unmarshal([]byte(arg), &a); err != nil {
		fmt.Fprintf(os.Stderr, "fuse-overlayfs helper: %v\n", err)
		os.Exit(3)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "fuse-overlayfs helper: not root in the user namespace (uid %d): the maps were not written\n", os.Geteuid())
		os.Exit(3)
	}
	// -f: in the foreground, this process; /dev/fd/N: libfuse serves the
	// connection that is already mounted instead of mounting one.
	args := []string{"fuse-overlayfs", "-f", "-o", a.Options, fmt.Sprintf("/dev/fd/%d", fuseDevFd)}
	err := unix.Exec(a.Bin, args, []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"})
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", a.Bin, err)
	os.Exit(3)
}
