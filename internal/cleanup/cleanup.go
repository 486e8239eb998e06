// Package cleanup is a stack of undo steps for code that changes the host in
// several steps (allocate an id range, make a directory, write a node): each
// step pushes its own undo as soon as it has succeeded, one deferred Clean
// runs them all in reverse on any failure, and Release forgets them once
// something else (the container's state) owns what they would undo.
//
// Threat: hand-written rollback on each error path is where host resources
// leak: the path added last forgets a step, and a leaked user namespace
// range is one a later container may never get, a leaked device node one
// an unrelated uid may open.
package cleanup

// Stack holds undo steps; the zero value is empty and ready.
type Stack struct{ steps []func() }

// Add pushes the undo of a step that has just succeeded.
func (s *Stack) Add(undo func()) { s.steps = append(s.steps, undo) }

// Clean runs the undo steps, the last added first, and empties the stack:
// deferred, it is a no-op after Release.
func (s *Stack) Clean() {
	for i := len(s.steps) - 1; i >= 0; i-- {
		s.steps[i]()
	}
	s.steps = nil
}

// Release forgets the undo steps: what they would undo now belongs to
// someone who removes it in its own time.
func (s *Stack) Release() { s.steps = nil }
