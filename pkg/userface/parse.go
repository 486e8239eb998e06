package userface

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/bulwark-sec/bulwark/pkg/policy"
	"github.com/bulwark-sec/bulwark/pkg/units"
)

// User is a --user value.
type User struct {
	UID, GID uint32
	HasGID   bool // false: only UID was given
}

// GIDOr is the group given, or def when there was none.
func (u User) GIDOr(def uint32) uint32 {
	if u.HasGID {
		return u.GID
	}
	return def
}

// ParseUser reads UID[:GID], numbers only (a name would need the
// container's /etc/passwd). `run --user` and `exec --user` both read it
// here.
func ParseUser(s string) (User, error) {
	us, gs, hasG := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return User{}, errors.New("want UID[:GID] (numbers)")
	}
	u := User{UID: uint32(uid), HasGID: hasG}
	if hasG {
		gid, err := strconv.ParseUint(gs, 10, 32)
		if err != nil {
			return User{}, errors.New("want UID[:GID] (numbers)")
		}
		u.GID = uint32(gid)
	}
	return u, nil
}

// parseVolume reads SRC:DST[:ro|rw].
func parseVolume(v string) (src, dst string, ro bool, err error) {
	parts := strings.Split(v, ":")
	switch {
	case len(parts) == 2:
	case len(parts) == 3 && (parts[2] == "ro" || parts[2] == "rw"):
		ro = parts[2] == "ro"
	default:
		return "", "", false, errors.New("want SRC:DST[:ro|rw]")
	}
	if parts[0] == "" || parts[1] == "" {
		return "", "", false, errors.New("want SRC:DST[:ro|rw]")
	}
	return parts[0], parts[1], ro, nil
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
