package vm

import (
	"bytes"
	"io"

	"github.com/bulwark-sec/bulwark/internal/vmproto"
)

// maxConsoleLine cuts a guest's console line that never ends: the line
// buffer must not grow with what the guest writes.
const maxConsoleLine = 4 << 10

// consoleLines prints the guest's serial console one line at a time,
// each as "vm console: LINE" with its control bytes escaped: the guest
// owns its kernel and what it writes reaches the person's terminal.
type consoleLines struct {
	out  io.Writer
	line []byte
}

func (c *consoleLines) Write(p []byte) (int, error) {
	for rest := p; len(rest) > 0; {
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			end = len(rest)
		}
		take := min(end, maxConsoleLine-len(c.line))
		c.line = append(c.line, rest[:take]...)
		rest = rest[take:]
		switch {
		case len(c.line) >= maxConsoleLine:
			c.flush()
		case take == end && len(rest) > 0: // rest starts with the '\n'
			c.flush()
			rest = rest[1:]
		}
	}
	// A terminal that went away must not stop the copy into the tail the
	// error report reads.
	return len(p), nil
}

func (c *consoleLines) flush() {
	line := bytes.TrimRight(c.line, "\r")
	_, _ = io.WriteString(c.out, "vm console: "+vmproto.Printable(string(line))+"\n")
	c.line = c.line[:0]
}
