package seccomp

import "errors"

// Sentinels carried in oci.FieldError.Err so callers and tests can tell problems
// apart with errors.Is without parsing messages.
var (
	ErrUnknownAction   = errors.New("unknown seccomp action")
	ErrUnknownArch     = errors.New("unknown seccomp architecture")
	ErrUnknownOperator = errors.New("unknown seccomp operator")
	ErrUnknownFlag     = errors.New("unknown seccomp flag")
	ErrUnknownSyscall  = errors.New("unknown syscall")
	ErrInvalid         = errors.New("invalid seccomp profile")
	// ErrUnsupported means the profile is valid but this libseccomp or kernel
	// cannot enforce it; upgrading the host, not editing the profile, fixes it.
	ErrUnsupported = errors.New("not supported by this libseccomp or kernel")
)
