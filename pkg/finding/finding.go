// Package finding is the vocabulary `bulwark audit` and `bulwark check`
// share: a Finding (what is wrong, why it matters, how to fix it), its
// severity, and the two ways a person or a CI job reads a report (a table
// sorted by severity, and JSON with a stable schema).
//
// Threat: a report that only says "insecure" is ignored, and one whose
// format drifts breaks the CI gate built on it. Every finding therefore
// names the scenario or CVE class it enables and the field or flag to
// change, and the JSON schema is versioned (SchemaVersion).
package finding

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Severity orders findings; the zero value is Info.
type Severity int

const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = []string{"info", "low", "medium", "high", "critical"}

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the name, so JSON carries "high", not 3.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSeverity reads a severity name, as --fail-on takes it.
func ParseSeverity(name string) (Severity, error) {
	i := slices.Index(severityNames, strings.ToLower(strings.TrimSpace(name)))
	if i < 0 {
		return 0, fmt.Errorf("unknown severity %q (want one of %s)", name, strings.Join(severityNames, ", "))
	}
	return Severity(i), nil
}

// Finding is one thing a person should know about, or fix.
type Finding struct {
	// ID is stable across releases: CI allowlists and docs refer to it.
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Subject is the container (a pod's container name, a docker
	// container) or "host"; empty when the target has only one.
	Subject string `json:"subject,omitempty"`
	// Where is the field, flag, file or sysctl the finding is about, in
	// the input's own vocabulary (HostConfig.Privileged, linux.seccomp,
	// /proc/sys/kernel/kptr_restrict, usr/bin/passwd).
	Where string `json:"where,omitempty"`
	// Message says what was found.
	Message string `json:"message"`
	// Reason says what an attacker gets from it: the talk's scenario or
	// the CVE class.
	Reason string `json:"reason"`
	// Fix is the field or flag to change, or the command to run.
	Fix string `json:"fix,omitempty"`
}

// Sort orders findings most severe first, then by subject, id and where,
// so that two runs over the same input print the same report.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(a.Subject, b.Subject),
			cmp.Compare(a.ID, b.ID),
			cmp.Compare(a.Where, b.Where),
		)
	})
}

// Max returns the highest severity among fs and whether there is any.
func Max(fs []Finding) (Severity, bool) {
	if len(fs) == 0 {
		return Info, false
	}
	m := Info
	for _, f := range fs {
		m = max(m, f.Severity)
	}
	return m, true
}

// AtOrAbove counts the findings at or above s: what --fail-on gates on.
func AtOrAbove(fs []Finding, s Severity) int {
	n := 0
	for _, f := range fs {
		if f.Severity >= s {
			n++
		}
	}
	return n
}
