// Package rlimit applies process.rlimits with prlimit(2), to the calling
// process or to another one. The runtime sets a create's rlimits on its init
// from outside: inside a user namespace the init could not raise a hard
// limit above the runtime's own. An exec'd process sets its own.
//
// Threat: a limit silently left unset lets the payload exhaust what the
// config meant to bound (open files, processes, locked memory); every
// failure names the rlimit's index and type.
package rlimit

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/pkg/oci"
)

// Set applies rls to pid (0: the caller).
func Set(pid int, rls []specs.POSIXRlimit) error {
	for i, rl := range rls {
		res, ok := oci.RlimitResource(rl.Type)
		if !ok {
			return &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("process.rlimits[%d].type", i), Msg: fmt.Sprintf("unknown rlimit %q", rl.Type), Err: oci.ErrInvalidConfig}
		}
		lim := unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := unix.Prlimit(pid, res, &lim, nil); err != nil {
			return &oci.FieldError{File: oci.ConfigFile, Field: fmt.Sprintf("process.rlimits[%d]", i), Msg: fmt.Sprintf("prlimit %s: %v", rl.Type, err), Err: err}
		}
	}
	return nil
}
