// Package selfexe gives the runtime a read-only handle on its own binary to exec the
// container's init (and exec helpers) from.
//
// Threat model: CVE-2019-5736. A process inside the container that is running our
// binary (for instance `bulwark exec` running a #!/proc/self/exe script, or a
// container init that is our binary until it execs the payload) can open
// /proc/PID/exe, which is a magic link straight to the host's runtime binary, wait for
// the runtime to exit, reopen it for writing and replace the host binary: the next
// `bulwark` started by root on the host then runs the attacker's code. The defense
// here is that the binary a container process ever runs is a view of ours on a
// detached, read-only bind mount, so /proc/PID/exe resolves to a file on a read-only
// mount and any open for writing fails with EROFS, whoever the opener is. Where the
// mount API is unavailable (kernel before 5.12, or no CAP_SYS_ADMIN over our mount
// namespace) the view is a sealed memfd copy instead, which cannot be written either.
//
// Nothing is cached: each Open makes a fresh view, which disappears when its last
// user (our descriptor, or a child's mm) goes away.
package selfexe

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// minFd is where Open places its descriptor. exec.Cmd's child reshuffles descriptors
// into 0..len(files)-1 (and briefly just above) before execve, and execve of
// /proc/self/fd/N needs N untouched by then; at 100 and above, an exec.Cmd with up to
// 48 ExtraFiles cannot collide with it.
const minFd = 100

// Open returns a descriptor of our own binary that is safe to exec a container
// process from: exec it through "/proc/self/fd/N" (see Command). The caller closes it
// once the child has started; the child keeps the view alive for as long as it runs.
//
// The preferred view is a detached read-only bind mount of the binary's directory,
// opened at the binary: it costs two syscalls and no copy, and a child's
// /proc/PID/exe then reads "/<binary name>". A sealed memfd copy is the fallback.
func Open() (*os.File, error) {
	f, err := openDetached("/proc/self/exe")
	if err == nil {
		return f, nil
	}
	m, merr := openMemfd("/proc/self/exe")
	if merr != nil {
		return nil, fmt.Errorf("making a read-only copy of our own binary (CVE-2019-5736 defense): detached mount: %v; sealed memfd: %w", err, merr)
	}
	return m, nil
}

// Command builds an exec.Cmd that runs our own binary from a fresh Open view, with
// argv[0] = os.Args[0] followed by args. Close the returned file after cmd.Start.
func Command(args ...string) (*exec.Cmd, *os.File, error) {
	f, err := Open()
	if err != nil {
		return nil, nil, err
	}
	return commandFor(f, args), f, nil
}

func commandFor(f *os.File, args []string) *exec.Cmd {
	cmd := exec.Command(fdPath(f))
	cmd.Args = append([]string{os.Args[0]}, args...)
	return cmd
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

var errNotSame = errors.New("not the same file")

// openDetached returns an O_PATH descriptor of exe on a detached read-only mount.
// exe may be a magic link such as /proc/self/exe; its target inode is what must end
// up behind the descriptor.
func openDetached(exe string) (*os.File, error) {
	var want unix.Stat_t
	if err := unix.Stat(exe, &want); err != nil {
		return nil, fmt.Errorf("stat %s: %w", exe, err)
	}
	name := exe
	if target, err := os.Readlink(exe); err == nil {
		name = target
	}
	// Cloning the directory rather than the file keeps the binary's name visible in
	// the child's /proc/PID/exe (a clone of the file itself reads as just "/").
	fd, err := viaDir(name, &want)
	if err != nil {
		// The binary may have been replaced or deleted since we started (an upgrade
		// in place); the magic link still reaches the file we are running, which is
		// the one whose protocol our child speaks.
		fd, err = cloneReadOnly(exe)
		if err != nil {
			return nil, err
		}
	}
	return fileAbove(fd, "selfexe:"+name)
}

func viaDir(path string, want *unix.Stat_t) (int, error) {
	dfd, err := cloneReadOnly(filepath.Dir(path))
	if err != nil {
		return -1, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat(dfd, filepath.Base(path), unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s on its read-only clone: %w", path, err)
	}
	var got unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("%s on the read-only clone: %w", path, errNotSame)
	}
	return fd, nil
}

// cloneReadOnly makes a detached (never attached to any mount namespace, so invisible
// in mountinfo and gone with its last reference) bind mount of path, read-only,
// nosuid and nodev. The attributes are set on the clone only; the host's mount is
// untouched.
func cloneReadOnly(path string) (int, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("open_tree(%s, OPEN_TREE_CLONE): %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount_setattr(read-only) on the clone of %s: %w", path, err)
	}
	return fd, nil
}

// openMemfd copies src into a memfd and seals it against any change. This costs a
// copy of the binary per container start, hence only the fallback.
func openMemfd(src string) (*os.File, error) {
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	// MFD_EXEC states intent on 6.3+ kernels (which otherwise log a warning, or
	// refuse exec under vm.memfd_noexec=1); older kernels reject it with EINVAL.
	fd, err := unix.MemfdCreate("bulwark", flags|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate("bulwark", flags)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	rw := os.NewFile(uintptr(fd), "memfd:bulwark")
	defer rw.Close()

	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("opening %s to copy: %w", src, err)
	}
	defer in.Close()
	if _, err := io.Copy(rw, in); err != nil {
		return nil, fmt.Errorf("copying %s into memfd: %w", src, err)
	}

	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals|unix.F_SEAL_EXEC)
	// F_SEAL_EXEC keeps the exec bit from being dropped under a running child; newer
	// kernels also imply the write seals from it, but we ask for them explicitly.
	if errors.Is(err, unix.EINVAL) { // F_SEAL_EXEC is 6.3+
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
	}
	if err != nil {
		return nil, fmt.Errorf("sealing memfd copy of %s: %w", src, err)
	}

	// execve refuses (ETXTBSY) a file that has any writable descriptor open, and
	// memfd_create only hands out read-write ones; reopen read-only, drop the other.
	ro, err := unix.Open(fdPath(rw), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("reopening memfd copy read-only: %w", err)
	}
	return fileAbove(ro, "memfd:bulwark")
}

// fileAbove moves fd to minFd or above (see minFd) and wraps it.
func fileAbove(fd int, name string) (*os.File, error) {
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, minFd)
	if err != nil {
		if !errors.Is(err, unix.EINVAL) {
			unix.Close(fd)
			return nil, fmt.Errorf("moving descriptor above %d: %w", minFd, err)
		}
		// EINVAL: RLIMIT_NOFILE is below minFd. Keep the low number; callers
		// passing few ExtraFiles are still fine.
		high = fd
	} else {
		unix.Close(fd)
	}
	return os.NewFile(uintptr(high), name), nil
}
