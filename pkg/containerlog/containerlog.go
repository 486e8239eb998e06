// Package containerlog keeps a detached container's stdout and stderr
// apart in one capped file, so `bulwark logs` can print each to its own
// stream, in the order they were written, as `docker logs` does.
//
// The file holds one record per line in the CRI logging format Kubernetes
// uses: "TIMESTAMP STREAM TAG CONTENT\n", TIMESTAMP in RFC 3339 with
// nanoseconds, STREAM stdout or stderr, TAG F for a full line (its newline
// dropped from CONTENT) or P for part of one (a line longer than a record,
// or the last bytes before the stream ended).
//
// Threats: a container that writes without end would fill the host's
// disk: the file is capped, and when full it becomes NAME.1 (replacing
// the one before), so a container keeps at most twice the cap on the
// host. A container's output is hostile: CONTENT never holds a newline,
// so no output can forge a record of the other stream or a timestamp, and
// the reader takes a line it cannot parse as plain stdout rather than
// failing. Not for interactive output: a line is recorded once it ends
// (or fills a record), as with Docker's json-file driver.
package containerlog

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// MaxRecord is the most CONTENT one record holds; a longer line is split
// into P records.
const MaxRecord = 16 << 10

// Log is the capped file both streams' records go to.
type Log struct {
	mu   sync.Mutex
	dir  *os.File
	name string
	max  int64
	f    *os.File
	n    int64
	now  func() time.Time
}

// Open opens (appending) or creates name in dir, by its fd so a removed
// directory takes the writes nowhere. Each of name and name.1 holds at
// most max bytes, or one record where a record is larger than max.
func Open(dir *os.File, name string, max int64) (*Log, error) {
	l := &Log{dir: dir, name: name, max: max, now: time.Now}
	return l, l.open()
}

func (l *Log) open() error {
	fd, err := unix.Openat(int(l.dir.Fd()), l.name, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	l.f, l.n = os.NewFile(uintptr(fd), l.name), 0
	if fi, err := l.f.Stat(); err == nil {
		l.n = fi.Size()
	}
	return nil
}

// record appends one record, rotating first when it would not fit: a
// record is never split across the two files.
func (l *Log) record(stream string, full bool, content []byte) error {
	tag := " P "
	if full {
		tag = " F "
	}
	b := make([]byte, 0, len(content)+64)
	b = l.now().UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, tag...)
	b = append(b, content...)
	b = append(b, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 && l.n+int64(len(b)) > l.max {
		l.f.Close()
		if err := unix.Renameat(int(l.dir.Fd()), l.name, int(l.dir.Fd()), l.name+".1"); err != nil {
			return err
		}
		if err := l.open(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(b)
	l.n += int64(n)
	return err
}

// Close closes the file; Relay must have returned for every stream.
func (l *Log) Close() error { return l.f.Close() }

// Relay records what r yields as stream ("stdout" or "stderr") until r
// ends, a line per record.
func (l *Log) Relay(stream string, r io.Reader) error {
	br := bufio.NewReaderSize(r, MaxRecord)
	for {
		line, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			if werr := l.record(stream, true, line[:len(line)-1]); werr != nil {
				return werr
			}
			continue
		case errors.Is(err, bufio.ErrBufferFull):
			if werr := l.record(stream, false, line); werr != nil {
				return werr
			}
			continue
		}
		if len(line) > 0 {
			if werr := l.record(stream, false, line); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		return err
	}
}

// Demux is an io.Writer that takes a log file's bytes, from any offset at
// a record's start, and writes each record's content to its stream. Its
// output is buffered (Flush); switching streams flushes the other first,
// so a terminal showing both sees them in the order they were written.
type Demux struct {
	out, err *bufio.Writer
	last     *bufio.Writer
	pending  []byte
}

// NewDemux writes stdout's records to stdout and stderr's to stderr.
func NewDemux(stdout, stderr io.Writer) *Demux {
	return &Demux{out: bufio.NewWriterSize(stdout, 64<<10), err: bufio.NewWriterSize(stderr, 64<<10)}
}

// Write takes more of the file; a record not yet ended waits for the rest.
func (d *Demux) Write(p []byte) (int, error) {
	d.pending = append(d.pending, p...)
	for {
		i := bytes.IndexByte(d.pending, '\n')
		if i < 0 {
			break
		}
		if err := d.line(d.pending[:i]); err != nil {
			return len(p), err
		}
		d.pending = d.pending[i+1:]
	}
	if len(d.pending) == 0 {
		d.pending = nil // let the buffer go
	}
	return len(p), nil
}

// Flush writes out what both streams hold.
func (d *Demux) Flush() error {
	if err := d.out.Flush(); err != nil {
		return err
	}
	return d.err.Flush()
}

// line writes one record's content to its stream; a line that is not a
// record (a log written by an older bulwark) goes to stdout as it is.
func (d *Demux) line(rec []byte) error {
	w, content, full := d.out, rec, true
	if f := bytes.SplitN(rec, []byte{' '}, 4); len(f) == 4 && (string(f[2]) == "F" || string(f[2]) == "P") &&
		(string(f[1]) == "stdout" || string(f[1]) == "stderr") {
		if _, err := time.Parse(time.RFC3339Nano, string(f[0])); err == nil {
			content, full = f[3], string(f[2]) == "F"
			if string(f[1]) == "stderr" {
				w = d.err
			}
		}
	}
	if d.last != nil && d.last != w {
		if err := d.last.Flush(); err != nil {
			return err
		}
	}
	d.last = w
	if _, err := w.Write(content); err != nil || !full {
		return err
	}
	return w.WriteByte('\n')
}
