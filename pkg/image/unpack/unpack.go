// Package unpack writes one image layer (an uncompressed tar stream) into a
// directory in overlayfs's format: whiteouts become 0/0 character devices
// and opaque directories an overlay.opaque xattr, so the directory can be
// used as a lower layer as it is.
//
// The threat is a malicious layer from a registry or an archive: entries
// that escape the layer root (`../`, absolute names, hardlink targets
// outside), a symlink planted by the layer and then written through
// (symlink-then-file), a decompression bomb, xattrs that forge overlayfs
// metadata. Every path is resolved beneath the root with openat2
// (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS): no symlink is ever followed during
// an unpack, not even one that points inside the layer, and the final
// component is created with *at calls on that directory and O_NOFOLLOW.
// The stream is cut at Options.MaxSize bytes and Options.MaxEntries entries.
//
// Do not use it on a directory other processes write to while it runs: it
// relies on the directory being private (callers unpack into a fresh temp
// directory and rename it into place when the whole layer is written).
package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Defaults when Options leaves a cap at zero.
const (
	DefaultMaxSize    = 32 << 30 // bytes of uncompressed tar per layer
	DefaultMaxEntries = 1 << 20
)

// ErrTooLarge is returned when a layer passes MaxSize or MaxEntries.
var ErrTooLarge = errors.New("layer exceeds the unpack cap")

// ErrUnmappedID is returned when Owners is set and an entry's uid or gid
// is not mapped in the unpacker's user namespace.
var ErrUnmappedID = errors.New("owner id not mapped")

// ErrUnsafePath is returned for an entry that would land outside the layer
// root or be written through a symlink.
var ErrUnsafePath = errors.New("unsafe path")

// Options says what the unpacker may do on this host.
type Options struct {
	// Privileged: chown entries to their uid/gid, make device nodes and
	// set security.capability. Without it devices are skipped (counted in
	// Stats.SkippedDevices) and files keep the unpacker's own owner.
	Privileged bool
	// Owners chowns entries to their uid/gid without the rest of
	// Privileged: for an unpack as root of a user namespace that maps
	// the image's ids (a rootless store, pkg/rootless/mapped), where
	// chown to a mapped id works and lands on the host id the mapping
	// names, and mknod of a device does not. security.capability is kept
	// too: the kernel writes it scoped to that namespace's root (v3), so
	// it means nothing on the host.
	Owners bool
	// UserXattr marks opaque directories with user.overlay.opaque (for an
	// overlay mounted with userxattr) instead of trusted.overlay.opaque.
	UserXattr bool
	// MaxSize caps the uncompressed tar stream; MaxEntries the entries.
	MaxSize    int64
	MaxEntries int
}

// Stats counts what an unpack wrote.
type Stats struct {
	Entries        int
	Bytes          int64 // regular file contents
	SkippedDevices int
}

// EntryError names the tar entry that failed.
type EntryError struct {
	Entry string
	Err   error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %q: %v", e.Entry, e.Err) }
func (e *EntryError) Unwrap() error { return e.Err }

type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, ErrTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

type dirTimes struct {
	rel string
	ts  []unix.Timespec
}

type unpacker struct {
	root  int
	opts  Options
	stats Stats
	dirs  []dirTimes
}

// Unpack reads the tar stream r into dir, which must exist and be private
// to the caller; dir becomes 0755 unless the layer has a "./" entry. It
// stops at the first bad entry; the caller discards dir.
func Unpack(r io.Reader, dir string, opts Options) (Stats, error) {
	if opts.MaxSize <= 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("open layer dir %s: %w", dir, err)
	}
	defer unix.Close(root)
	// The root of a lower layer can become the container's "/": the
	// usual mode unless the layer's "./" entry says otherwise.
	if err := unix.Fchmod(root, 0o755); err != nil {
		return Stats{}, fmt.Errorf("chmod layer dir %s: %w", dir, err)
	}
	u := &unpacker{root: root, opts: opts}
	tr := tar.NewReader(&capReader{r: r, left: opts.MaxSize})
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				return u.stats, fmt.Errorf("%w of %d bytes", ErrTooLarge, opts.MaxSize)
			}
			return u.stats, fmt.Errorf("read tar after %d entries: %w", u.stats.Entries, err)
		}
		u.stats.Entries++
		if u.stats.Entries > opts.MaxEntries {
			return u.stats, fmt.Errorf("%w of %d entries", ErrTooLarge, opts.MaxEntries)
		}
		if err := u.entry(hdr, tr); err != nil {
			return u.stats, &EntryError{Entry: hdr.Name, Err: err}
		}
	}
	// Directory times last: writing into a directory changes its mtime.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := unix.UtimesNanoAt(root, d.rel, d.ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return u.stats, &EntryError{Entry: d.rel, Err: fmt.Errorf("set times: %w", err)}
		}
	}
	return u.stats, nil
}

// clean returns name relative to the layer root, "." for the root itself.
func clean(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute name", ErrUnsafePath)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: \"..\" in name", ErrUnsafePath)
		}
	}
	rel := path.Clean(name)
	if rel == "" || strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("%w: empty name", ErrUnsafePath)
	}
	return rel, nil
}

// openDir opens rel (a directory beneath the root) without following any
// symlink, creating missing components when create is set.
func (u *unpacker) openDir(rel string, create bool) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	}
	fd, err := unix.Openat2(u.root, rel, &how)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		return fd, resolveErr(rel, err)
	}
	// Walk down, making what is missing (tars may omit parent entries).
	cur := "."
	for _, c := range strings.Split(rel, "/") {
		next := path.Join(cur, c)
		fd, err = unix.Openat2(u.root, next, &how)
		if errors.Is(err, unix.ENOENT) {
			parent, perr := unix.Openat2(u.root, cur, &how)
			if perr != nil {
				return -1, resolveErr(cur, perr)
			}
			err = unix.Mkdirat(parent, c, 0o755)
			unix.Close(parent)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, fmt.Errorf("mkdir %s: %w", next, err)
			}
			fd, err = unix.Openat2(u.root, next, &how)
		}
		if err != nil {
			return -1, resolveErr(next, err)
		}
		if next != rel {
			unix.Close(fd)
		}
		cur = next
	}
	return fd, nil
}

func resolveErr(rel string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%w: %s is not a directory of the layer (a symlink or a file): %v", ErrUnsafePath, rel, err)
	default:
		return fmt.Errorf("open %s: %w", rel, err)
	}
}

// removeExisting clears name in parent unless both it and the new entry
// are directories (a later entry overrides an earlier one).
func removeExisting(parent int, name string, newIsDir bool) (existsDir bool, err error) {
	var st unix.Stat_t
	if err := unix.Fstatat(parent, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return false, err
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir && newIsDir {
		return true, nil
	}
	if !isDir {
		return false, unix.Unlinkat(parent, name, 0)
	}
	return false, removeAllAt(parent, name)
}

// removeAllAt removes the directory name in parent and everything below
// it, never following a symlink.
func removeAllAt(parent int, name string) error {
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			f.Close()
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeAllAt(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}

func (u *unpacker) opaqueXattr() string {
	if u.opts.UserXattr {
		return "user.overlay.opaque"
	}
	return "trusted.overlay.opaque"
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := clean(hdr.Name)
	if err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the layer root is not a directory", ErrUnsafePath)
		}
		if err := u.meta(u.root, ".", hdr, true); err != nil {
			return err
		}
		u.dirs = append(u.dirs, dirTimes{".", times(hdr)})
		return nil
	}
	dir, base := path.Split(rel)
	dir = path.Clean("./" + dir)
	parent, err := u.openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(parent)

	if strings.HasPrefix(base, ".wh.") {
		return u.whiteout(parent, base)
	}
	existsDir, err := removeExisting(parent, base, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return fmt.Errorf("replace earlier entry: %w", err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !existsDir {
			if err := unix.Mkdirat(parent, base, 0o700); err != nil {
				return fmt.Errorf("mkdir: %w", err)
			}
		}
		u.dirs = append(u.dirs, dirTimes{rel, times(hdr)})
		return u.meta(parent, base, hdr, true)
	case tar.TypeReg: // the reader turns old writers' TypeRegA into TypeReg
		return u.file(parent, base, hdr, r)
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		return u.meta(parent, base, hdr, false)
	case tar.TypeLink:
		target, err := clean(hdr.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("%w: hardlink target %q", ErrUnsafePath, hdr.Linkname)
		}
		tdir, tbase := path.Split(target)
		tparent, err := u.openDir(path.Clean("./"+tdir), false)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(tparent)
		// Flags 0: linkat never follows a symlink target.
		if err := unix.Linkat(tparent, tbase, parent, base, 0); err != nil {
			return fmt.Errorf("hardlink to %q (it must be earlier in the same layer): %w", hdr.Linkname, err)
		}
		return nil
	case tar.TypeChar, tar.TypeBlock:
		if !u.opts.Privileged {
			u.stats.SkippedDevices++
			return nil
		}
		typ := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			typ = unix.S_IFBLK
		}
		if err := unix.Mknodat(parent, base, typ|0o600, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		return u.meta(parent, base, hdr, false)
	case tar.TypeFifo:
		if err := unix.Mknodat(parent, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		return u.meta(parent, base, hdr, false)
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
}

// whiteout turns ".wh.NAME" into overlayfs's whiteout for NAME and
// ".wh..wh..opq" into an opaque mark on the directory.
func (u *unpacker) whiteout(parent int, base string) error {
	if base == ".wh..wh..opq" {
		fd, err := unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, u.opaqueXattr(), []byte("y"), 0); err != nil {
			return fmt.Errorf("mark opaque (%s): %w", u.opaqueXattr(), err)
		}
		return nil
	}
	if strings.HasPrefix(base, ".wh..wh.") {
		return nil // aufs bookkeeping (.wh..wh.plnk and the like)
	}
	name := strings.TrimPrefix(base, ".wh.")
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: whiteout of %q", ErrUnsafePath, name)
	}
	if _, err := removeExisting(parent, name, false); err != nil {
		return fmt.Errorf("whiteout %s: %w", name, err)
	}
	// A 0/0 character device; the kernel lets anyone make one (5.8+).
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", name, err)
	}
	return nil
}

func (u *unpacker) file(parent int, base string, hdr *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	n, err := io.Copy(f, r)
	u.stats.Bytes += n
	if err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("%w of %d bytes", ErrTooLarge, u.opts.MaxSize)
		}
		return fmt.Errorf("write: %w", err)
	}
	if err := u.xattrs(fd, hdr); err != nil {
		return err
	}
	if err := u.meta(parent, base, hdr, false); err != nil {
		return err
	}
	return f.Close()
}

func (u *unpacker) xattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		// Only what a file needs to run: a layer must not forge
		// overlayfs metadata (trusted.overlay.*) or labels.
		allowed := strings.HasPrefix(name, "user.") && !strings.HasPrefix(name, "user.overlay.")
		if name == "security.capability" {
			allowed = u.opts.Privileged || u.opts.Owners
		}
		if !allowed {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func times(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
}

// meta applies owner, mode and (for non-directories) times to name in
// parent without following it. Chown comes first: it clears setuid.
func (u *unpacker) meta(parent int, name string, hdr *tar.Header, isDir bool) error {
	if u.opts.Privileged || u.opts.Owners {
		if err := unix.Fchownat(parent, name, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if u.opts.Owners && errors.Is(err, unix.EINVAL) {
				// The kernel's answer for an id the namespace lacks.
				return fmt.Errorf("chown %d:%d: %w (%v)", hdr.Uid, hdr.Gid, ErrUnmappedID, err)
			}
			return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// name is not a symlink (we just made it, in a private tree).
		if err := unix.Fchmodat(parent, name, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod %o: %w", hdr.Mode, err)
		}
	}
	if isDir {
		return nil
	}
	if err := unix.UtimesNanoAt(parent, name, times(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
