// Package passwd reads the user and group databases of a container's image
// (/etc/passwd, /etc/group): the home directory the init gives a process
// without HOME, and the ids of a user or group named on the command line.
//
// Threat: the files belong to the image, which may be hostile. A FIFO or a
// device in their place must not block or feed the reader (only regular
// files are read, without blocking), a huge file must not exhaust the
// runtime's memory (reads stop at MaxSize), and malformed lines are
// skipped, never trusted. On the host, a symlink in the image must not
// lead to a host file: OpenInRoot resolves inside the rootfs (the init
// reads after pivot_root, where / is the image).
package passwd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxSize is the most of either file that is read.
const MaxSize = 4 << 20

// User is one /etc/passwd entry.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
}

// Group is one /etc/group entry.
type Group struct {
	Name string
	GID  uint32
}

// ErrNotFound is returned by the lookups when no entry matches.
var ErrNotFound = errors.New("no such entry")

// ParseUsers reads passwd(5) lines: name:password:uid:gid:gecos:home:shell.
func ParseUsers(r io.Reader) ([]User, error) {
	var out []User
	err := lines(r, func(f []string) {
		if len(f) < 7 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if f[0] == "" || err1 != nil || err2 != nil {
			return
		}
		out = append(out, User{Name: f[0], UID: uint32(uid), GID: uint32(gid), Home: f[5]})
	})
	return out, err
}

// ParseGroups reads group(5) lines: name:password:gid:members.
func ParseGroups(r io.Reader) ([]Group, error) {
	var out []Group
	err := lines(r, func(f []string) {
		if len(f) < 3 {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if f[0] == "" || err != nil {
			return
		}
		out = append(out, Group{Name: f[0], GID: uint32(gid)})
	})
	return out, err
}

func lines(r io.Reader, each func([]string)) error {
	s := bufio.NewScanner(io.LimitReader(r, MaxSize))
	s.Buffer(make([]byte, 0, 4096), 64<<10)
	for s.Scan() {
		l := s.Text()
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "+") || strings.HasPrefix(l, "-") {
			continue
		}
		each(strings.Split(l, ":"))
	}
	if errors.Is(s.Err(), bufio.ErrTooLong) {
		return nil // a line too long to be an entry ends the file
	}
	return s.Err()
}

// Open opens path for reading if it is a regular file, without blocking on
// a FIFO in its place.
func Open(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return regular(os.NewFile(uintptr(fd), path))
}

// regular returns f if it is a regular file and closes it otherwise.
func regular(f *os.File) (*os.File, error) {
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file (%s)", f.Name(), st.Mode().Type())
	}
	return f, nil
}

// UserByUID returns the first entry of uid in the passwd file path.
func UserByUID(path string, uid uint32) (User, error) {
	return findUser(path, func(u User) bool { return u.UID == uid }, strconv.FormatUint(uint64(uid), 10))
}

func findUser(path string, match func(User) bool, what string) (User, error) {
	f, err := Open(path)
	if err != nil {
		return User{}, err
	}
	defer f.Close()
	return FindUser(f, match, what)
}

// FindUser returns the first user in r that match accepts; what names the
// user in the error.
func FindUser(r io.Reader, match func(User) bool, what string) (User, error) {
	us, err := ParseUsers(r)
	if err != nil {
		return User{}, err
	}
	for _, u := range us {
		if match(u) {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("user %s: %w", what, ErrNotFound)
}

// FindGroup is FindUser for groups.
func FindGroup(r io.Reader, match func(Group) bool, what string) (Group, error) {
	gs, err := ParseGroups(r)
	if err != nil {
		return Group{}, err
	}
	for _, g := range gs {
		if match(g) {
			return g, nil
		}
	}
	return Group{}, fmt.Errorf("group %s: %w", what, ErrNotFound)
}

// OpenInRoot opens rel (say "etc/passwd") inside the directory rootfs from
// the host, resolving symlinks and ".." as if rootfs were / (openat2
// RESOLVE_IN_ROOT): an image whose /etc/passwd links to /etc/shadow gets
// the image's own path, never the host's file. Regular files only, opened
// without blocking.
func OpenInRoot(rootfs, rel string) (*os.File, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	how := &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	var fd int
	for range 32 {
		// EAGAIN: a rename raced the lookup; the kernel asks for a retry.
		if fd, err = unix.Openat2(root, rel, how); err != unix.EAGAIN {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open in " + rootfs, Path: rel, Err: err}
	}
	return regular(os.NewFile(uintptr(fd), rootfs+"/"+rel))
}

// WithHome returns env as the process gets it, as runc gives it: each
// variable once, with its last value, at the place of its last mention (the
// rule of Go's os/exec, so "ONE=two ONE=" leaves ONE empty), and HOME set
// when it has none or an empty one: git's global config, the Go toolchain
// and pip refuse to run without it, and Docker passes HOME= for a user who
// unset it. The value is the home directory of uid in /etc/passwd, or "/"
// when it has no entry (or no readable file). Callers run it after
// pivot_root (the container's init, the VM agent once the rootfs is its
// root), so the image's file is read and a symlink in it resolves inside
// the container. The caller's slice is never written through.
func WithHome(env []string, uid uint32) []string {
	env = dedupEnv(env)
	hasHome := false
	for i, e := range env {
		if e == "HOME=" {
			env = slices.Delete(env, i, i+1)
			break
		}
		if strings.HasPrefix(e, "HOME=") {
			hasHome = true
			break
		}
	}
	if hasHome {
		return env
	}
	home := "/"
	if u, err := UserByUID("/etc/passwd", uid); err == nil && strings.HasPrefix(u.Home, "/") {
		home = u.Home
	}
	return append(env, "HOME="+home)
}

// dedupEnv returns a copy of env with each NAME= kept once: its last
// entry, where that entry stands. Entries without "=" are kept as they are.
func dedupEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	seen := make(map[string]bool, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		name, _, ok := strings.Cut(env[i], "=")
		if ok {
			if seen[name] {
				continue
			}
			seen[name] = true
		}
		out = append(out, env[i])
	}
	slices.Reverse(out)
	return out
}
