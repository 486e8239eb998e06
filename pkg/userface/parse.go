package userface

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/bulwark-sec/bulwark/pkg/passwd"
	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/units"
)

// User is a --user value.
type User struct {
	UID, GID uint32
	HasGID   bool // false: only a user was given
	// Name and Group, when set, are names still to be looked up in the
	// image (Resolve); UID or GID hold nothing until then.
	Name, Group string
}

// GIDOr is the group given, or def when there was none.
func (u User) GIDOr(def uint32) uint32 {
	if u.HasGID {
		return u.GID
	}
	return def
}

// ParseUser reads USER[:GROUP], each a number or a name; names are looked
// up in the image by Resolve. `run --user` and `exec --user` both read it
// here.
func ParseUser(s string) (User, error) {
	bad := errors.New("want USER[:GROUP], each a number or a name from the image's /etc/passwd and /etc/group")
	us, gs, hasG := strings.Cut(s, ":")
	var u User
	if n, err := strconv.ParseUint(us, 10, 32); err == nil {
		u.UID = uint32(n)
	} else if validName(us) {
		u.Name = us
	} else {
		return User{}, bad
	}
	if !hasG {
		return u, nil
	}
	u.HasGID = true
	if n, err := strconv.ParseUint(gs, 10, 32); err == nil {
		u.GID = uint32(n)
	} else if validName(gs) {
		u.Group = gs
	} else {
		return User{}, bad
	}
	return u, nil
}

// validName accepts what useradd and groupadd make (and a little more),
// never a path, a separator of the files or a line break, nor a number
// too large to be an id.
func validName(s string) bool {
	if s == "" || len(s) > 256 || s[0] == '-' || strings.Trim(s, "0123456789") == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-$", c)) {
			return false
		}
	}
	return true
}

// Resolve looks the names of u up in rootfs's /etc/passwd and /etc/group,
// read inside the rootfs (a symlink in the image never reaches a host
// file). A user given by name without a group gets its entry's group, as
// Docker does; numbers are kept as they are.
func (u User) Resolve(rootfs string) (User, error) {
	if u.Name != "" {
		e, err := lookup(rootfs, "etc/passwd", func(f *os.File) (passwd.User, error) {
			return passwd.FindUser(f, func(e passwd.User) bool { return e.Name == u.Name }, u.Name)
		})
		if err != nil {
			return User{}, err
		}
		u.UID, u.Name = e.UID, ""
		if !u.HasGID {
			u.GID, u.HasGID = e.GID, true
		}
	}
	if u.Group != "" {
		g, err := lookup(rootfs, "etc/group", func(f *os.File) (passwd.Group, error) {
			return passwd.FindGroup(f, func(e passwd.Group) bool { return e.Name == u.Group }, u.Group)
		})
		if err != nil {
			return User{}, err
		}
		u.GID, u.Group = g.GID, ""
	}
	return u, nil
}

func lookup[T any](rootfs, rel string, find func(*os.File) (T, error)) (T, error) {
	var zero T
	f, err := passwd.OpenInRoot(rootfs, rel)
	if err != nil {
		return zero, fmt.Errorf("a name needs the image's /%s: %w", rel, err)
	}
	defer f.Close()
	v, err := find(f)
	if err != nil {
		return zero, fmt.Errorf("%w in the image's /%s", err, rel)
	}
	return v, nil
}

// volume is a -v value.
type volume struct {
	src, dst string
	ro       bool
	// noIdmap keeps the host's ownership as it is: the container sees its
	// own range's files and nobody's for the rest (for a directory chowned
	// to a pinned --userns-range, or a filesystem the kernel cannot
	// idmap).
	noIdmap bool
	// idmap, when set, maps container ids idmap.ContainerID... to host ids
	// idmap.HostID... on disk, instead of the directory's owner to root.
	idmap *specs.LinuxIDMapping
}

// parseVolume reads SRC:DST[:OPT[,OPT]] with OPT one of ro, rw, noidmap,
// idmap=CONTAINERID-HOSTID-SIZE.
func parseVolume(v string) (volume, error) {
	bad := errors.New("want SRC:DST[:OPT[,OPT]] with OPT ro, rw, noidmap or idmap=CONTAINERID-HOSTID-SIZE")
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return volume{}, bad
	}
	vol := volume{src: parts[0], dst: parts[1]}
	if len(parts) == 3 {
		seen := map[string]bool{}
		for _, o := range strings.Split(parts[2], ",") {
			if seen[o] {
				return volume{}, fmt.Errorf("option %q given twice: %w", o, bad)
			}
			seen[o] = true
			if m, ok := strings.CutPrefix(o, "idmap="); ok {
				if vol.idmap != nil {
					return volume{}, fmt.Errorf("idmap given twice: %w", bad)
				}
				im, err := parseIDMap(m)
				if err != nil {
					return volume{}, fmt.Errorf("option %q: %w", o, err)
				}
				vol.idmap = &im
				continue
			}
			switch o {
			case "ro":
				vol.ro = true
			case "rw":
				vol.ro = false
			case "noidmap":
				vol.noIdmap = true
			default:
				return volume{}, fmt.Errorf("option %q: %w", o, bad)
			}
		}
		if seen["ro"] && seen["rw"] {
			return volume{}, fmt.Errorf("ro conflicts with rw: %w", bad)
		}
		if vol.noIdmap && vol.idmap != nil {
			return volume{}, fmt.Errorf("noidmap conflicts with idmap=: %w", bad)
		}
	}
	return vol, nil
}

// parseIDMap reads CONTAINERID-HOSTID-SIZE. Host id 0 is refused: what
// the container writes must never be host root's.
func parseIDMap(s string) (specs.LinuxIDMapping, error) {
	bad := errors.New("want CONTAINERID-HOSTID-SIZE, three numbers, SIZE at least 1, host ids above 0")
	f := strings.Split(s, "-")
	if len(f) != 3 {
		return specs.LinuxIDMapping{}, bad
	}
	var n [3]uint64
	for i, x := range f {
		v, err := strconv.ParseUint(x, 10, 32)
		if err != nil {
			return specs.LinuxIDMapping{}, bad
		}
		n[i] = v
	}
	if n[1] == 0 || n[2] == 0 || n[0]+n[2] > 1<<32-1 || n[1]+n[2] > 1<<32-1 {
		return specs.LinuxIDMapping{}, bad
	}
	return specs.LinuxIDMapping{ContainerID: uint32(n[0]), HostID: uint32(n[1]), Size: uint32(n[2])}, nil
}

// parseTmpfs reads DST[:OPT,...] with OPT one of size=N, exec, noexec
// (the default: a writable place is not also a place to run what was
// written, unless asked); the size defaults to the profiles' /tmp.
func parseTmpfs(t string) (dst string, size int64, exec bool, err error) {
	dst, opts, _ := strings.Cut(t, ":")
	size = int64(policy.DefaultTmpSize)
	if opts == "" {
		return dst, size, false, nil
	}
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "exec":
			exec = true
			continue
		case "noexec":
			exec = false
			continue
		}
		v, ok := strings.CutPrefix(o, "size=")
		if !ok {
			return "", 0, false, fmt.Errorf("option %q: want size=N, exec or noexec", o)
		}
		n, err := parseLimit(v)
		if err != nil {
			return "", 0, false, err
		}
		size = n
	}
	return dst, size, exec, nil
}

// parseLimit is a size that limits something: zero would be no room at all.
func parseLimit(v string) (int64, error) {
	n, err := units.ParseSize(v)
	if err != nil {
		return 0, err
	}
	if n <= 0 {
		return 0, fmt.Errorf("size %q: want more than 0 bytes", v)
	}
	return n, nil
}

// parsePort reads PORT[/PROTO] (an image's ExposedPorts key, or
// --expose) and returns it as PORT/PROTO, tcp unless said.
func parsePort(s string) (string, error) {
	num, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	n, err := strconv.ParseUint(num, 10, 16)
	if err != nil || n == 0 {
		return "", fmt.Errorf("port %q is not a number from 1 to 65535", num)
	}
	switch proto = strings.ToLower(proto); proto {
	case "tcp", "udp", "sctp":
	default:
		return "", fmt.Errorf("protocol %q: want tcp, udp or sctp", proto)
	}
	return strconv.FormatUint(n, 10) + "/" + proto, nil
}
