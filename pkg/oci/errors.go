package oci

import (
	"errors"
	"strconv"
	"strings"
)

var (
	// ErrInvalidID is returned (wrapped) by ValidateID.
	ErrInvalidID = errors.New("invalid container ID")
	// ErrNoConfig means the bundle has no config.json to load.
	ErrNoConfig = errors.New("bundle has no config.json")
	// ErrInvalidConfig is wrapped by every FieldError that describes a
	// problem in the configuration itself (as opposed to, say, an I/O error).
	ErrInvalidConfig = errors.New("invalid configuration")
)

// FieldError points at one problem in a configuration file. Field is the
// JSON path of the offending value as the user wrote it
// ("linux.namespaces[2].type"), not the Go field name, so it can be found in
// the file. Line and Column are set when the position in the file is known
// (1-based), which is the case for errors found while decoding JSON.
type FieldError struct {
	File   string
	Field  string
	Msg    string
	Err    error
	Line   int
	Column int
}

// Error renders "config.json:3:7: process.cwd: msg", omitting the parts that
// are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
			if e.Column > 0 {
				b.WriteString(":" + strconv.Itoa(e.Column))
			}
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	switch {
	case e.Msg != "":
		b.WriteString(e.Msg)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("invalid value")
	}
	return b.String()
}

// Unwrap lets errors.Is(err, ErrInvalidConfig) and errors.Is(err,
// fs.ErrNotExist) see through the FieldError.
func (e *FieldError) Unwrap() error { return e.Err }

// InConfig attributes err to config.json, for errors from packages that are
// handed one section of the config and so cannot know the file's name
// (pkg/seccomp, pkg/caps, pkg/landlock). A *FieldError that names no file
// gets ConfigFile; any other error is wrapped in a *FieldError naming only
// the file. The text is "config.json: " followed by err's own.
func InConfig(err error) error {
	if err == nil {
		return nil
	}
	if fe, ok := err.(*FieldError); ok {
		if fe.File != "" {
			return err
		}
		c := *fe
		c.File = ConfigFile
		return &c
	}
	return &FieldError{File: ConfigFile, Err: err}
}
