package oci

import (
	"fmt"
	"strconv"
)

// maxIDLen is NAME_MAX: the ID becomes a directory name in the state root,
// and a longer one would fail later with an ENAMETOOLONG that does not say
// which input was at fault.
const maxIDLen = 255

// ValidateID accepts the same container IDs as runc: one or more of
// [A-Za-z0-9_+.-], and not "." or "..". The ID is used as a path component
// under the state root (and in cgroup and systemd unit names), so anything
// that could name another directory ("..", "a/b") or be truncated by C code
// (NUL) must never get through.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: container ID must not be empty", ErrInvalidID)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: container ID %.40q... is %d bytes long, the limit is %d", ErrInvalidID, id, len(id), maxIDLen)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: container ID %q would name a directory other than its own", ErrInvalidID, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '+', c == '-', c == '.':
		default:
			return fmt.Errorf("%w: container ID %q contains %s at byte %d; only letters, digits, '_', '+', '-' and '.' are allowed",
				ErrInvalidID, id, strconv.Quote(id[i:i+1]), i)
		}
	}
	return nil
}
