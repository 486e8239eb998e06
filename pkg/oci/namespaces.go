package oci

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The namespace helpers below are the one place that reads and edits
// linux.namespaces. Each lookup treats a nil spec or a nil linux section as
// "no namespaces" (the container then shares every namespace with the host),
// so callers need no nil checks of their own, and a check written once
// cannot disagree with a loop written elsewhere. Lookups return the first
// entry of a type: Validate refuses configs that list a type twice.

// Namespace returns the linux.namespaces entry of type t and whether s lists
// one.
func Namespace(s *specs.Spec, t specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	if s == nil || s.Linux == nil {
		return specs.LinuxNamespace{}, false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}

// HasNamespace reports whether the container is in a namespace of type t
// other than the host's: a new one, or one it joins by path.
func HasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	_, ok := Namespace(s, t)
	return ok
}

// CreatesNamespace reports whether the container gets a new namespace of
// type t of its own (listed without a path), as opposed to joining one or
// sharing the host's.
func CreatesNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	ns, ok := Namespace(s, t)
	return ok && ns.Path == ""
}

// SetNamespace makes ns the entry for its type: an existing entry of that
// type is replaced where it stands (the order of linux.namespaces is kept),
// otherwise ns is appended. A nil linux section is created; s must not be nil.
func SetNamespace(s *specs.Spec, ns specs.LinuxNamespace) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if i := slices.IndexFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == ns.Type }); i >= 0 {
		s.Linux.Namespaces[i] = ns
		return
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, ns)
}

// RemoveNamespace removes every entry of type t, so the container shares the
// host's namespace of that type.
func RemoveNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	if s == nil || s.Linux == nil {
		return
	}
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}
