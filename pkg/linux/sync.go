package linux

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/wire"
)

// Msg is one frame on the sync socket between the runtime and the init.
// Frames are a 4-byte big-endian length and a JSON body, except the config
// frame (a tag byte and internal/wire's encoding of the InitConfig); a frame
// may carry file descriptors (SCM_RIGHTS) attached to its first byte.
type Msg struct {
	Type string `json:"type"`
	// Error is set on "error" frames: the init could not build the container.
	Error string `json:"error,omitempty"`
	// Config carries the InitConfig on the "config" frame. Hidden from
	// JSON: encoding/json sets up a type's whole tree on first use, and
	// through Config that is the entire OCI spec, a cost the init would pay
	// for every JSON frame.
	Config *InitConfig `json:"-"`
	Pid    int         `json:"pid,omitempty"`
}

// Message types, in the order they flow during create.
const (
	MsgConfig   = "config"   // runtime -> init
	MsgCgroup   = "cgroup"   // runtime -> init: in its cgroups now (after a config with CgroupPending)
	MsgHooks    = "hooks"    // init -> runtime: run prestart/createRuntime now
	MsgResume   = "resume"   // runtime -> init
	MsgConsole  = "console"  // init -> runtime: pty master attached (when no console socket)
	MsgSeccomp  = "seccomp"  // init -> runtime: seccomp notify fd attached
	MsgReady    = "ready"    // init -> runtime: created, now waiting for start
	MsgError    = "error"    // init -> runtime
	MsgExecDone = "execdone" // never sent: EOF on the socket means execve succeeded
)

// wireConfigTag starts a config frame's body, which is not JSON (JSON
// bodies start with '{').
const wireConfigTag = 0x01

// maxFrame bounds a frame so a corrupted length cannot make us allocate GiBs.
const maxFrame = 64 << 20

// Conn wraps the init side or runtime side of the sync socket.
type Conn struct {
	f *os.File
}

// NewConn takes ownership of f.
func NewConn(f *os.File) *Conn { return &Conn{f: f} }

func (c *Conn) File() *os.File { return c.f }
func (c *Conn) Close() error   { return c.f.Close() }

// Send writes one frame, with optional fds. The socket is used blocking: the
// init is single-purpose and the runtime waits on it anyway.
func (c *Conn) Send(m *Msg, fds ...int) error {
	var body []byte
	var err error
	switch {
	case m.Config != nil && m.Type == MsgConfig:
		// The init is a fresh process: encoding/json's first decode of
		// the OCI spec cost it 0.45 ms of set-up on the critical path of
		// every start, whatever the config's size.
		var cfg []byte
		if cfg, err = wire.Marshal(m.Config); err == nil {
			body = append([]byte{wireConfigTag}, cfg...)
		}
	case m.Config != nil:
		err = fmt.Errorf("a config can only travel in a %q frame, not %q", MsgConfig, m.Type)
	default:
		body, err = json.Marshal(m)
	}
	if err != nil {
		return err
	}
	buf := make([]byte, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	copy(buf[4:], body)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	fd := int(c.f.Fd())
	for sent := 0; sent < len(buf); {
		var n int
		if sent == 0 {
			n, err = unix.SendmsgN(fd, buf, oob, nil, unix.MSG_NOSIGNAL)
		} else {
			n, err = unix.SendmsgN(fd, buf[sent:], nil, nil, unix.MSG_NOSIGNAL)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("sync socket: send %s: %w", m.Type, err)
		}
		sent += n
	}
	return nil
}

// Recv reads one frame. io.EOF means the peer closed the socket.
func (c *Conn) Recv() (*Msg, []*os.File, error) {
	fd := int(c.f.Fd())
	hdr := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*8))
	var n, oobn int
	var err error
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, hdr, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sync socket: %w", err)
	}
	if n == 0 {
		return nil, nil, io.EOF
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, nil, err
		}
		for _, cm := range msgs {
			fds, err := unix.ParseUnixRights(&cm)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "sync-fd"))
			}
		}
	}
	if n < 4 {
		if _, err := io.ReadFull(c.f, hdr[n:]); err != nil {
			// Not io.EOF: callers read a clean EOF as "the init exec'd".
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, files, fmt.Errorf("sync socket: short header: %w", err)
		}
	}
	size := binary.BigEndian.Uint32(hdr)
	if size > maxFrame {
		return nil, files, fmt.Errorf("sync socket: frame of %d bytes", size)
	}
	// Grow with what actually arrives: a header announcing maxFrame from a
	// peer that then sends nothing must not cost maxFrame of memory.
	var body bytes.Buffer
	if n, err := io.CopyN(&body, c.f, int64(size)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, files, fmt.Errorf("sync socket: short frame (%d of %d bytes): %w", n, size, err)
	}
	if b := body.Bytes(); len(b) > 0 && b[0] == wireConfigTag {
		cfg := new(InitConfig)
		if err := wire.Unmarshal(b[1:], cfg); err != nil {
			return nil, files, fmt.Errorf("sync socket: config frame: %w", err)
		}
		return &Msg{Type: MsgConfig, Config: cfg}, files, nil
	}
	m := new(Msg)
	if err := json.Unmarshal(body.Bytes(), m); err != nil {
		return nil, files, fmt.Errorf("sync socket: %w", err)
	}
	return m, files, nil
}

// Expect reads a frame and fails unless it has the given type; an "error"
// frame turns into that error.
func (c *Conn) Expect(typ string) (*Msg, []*os.File, error) {
	m, files, err := c.Recv()
	if err != nil {
		return nil, nil, err
	}
	if m.Type == MsgError {
		closeAll(files)
		return nil, nil, errors.New(m.Error)
	}
	if m.Type != typ {
		closeAll(files)
		return nil, nil, fmt.Errorf("sync socket: expected %q, got %q", typ, m.Type)
	}
	return m, files, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
