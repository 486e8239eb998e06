package seccomp

import "errors"

// Sentinels carried in FieldError.Err so callers and tests can tell problems
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

// FieldError is one problem in a seccomp profile. Field is the JSON path from
// the config root ("linux.seccomp.syscalls[3].names[0]") so that a caller can
// prefix the file name and the user can jump straight to the culprit.
type FieldError struct {
	Field string
	Msg   string
	Err   error
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func (e *FieldError) Unwrap() error { return e.Err }
