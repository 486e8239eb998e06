package initproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/bulwark-sec/bulwark/internal/wire"
)

// A frame is a 4-byte big-endian length and a body: one kind byte, then the
// message's fields in internal/wire's encoding (nothing for the kinds
// without fields). A frame may carry file descriptors (SCM_RIGHTS) attached
// to its first byte.

// MaxFds is the most fds one frame carries (the kernel's SCM_MAX_FD).
const MaxFds = 253

// maxFrame bounds a frame so a corrupted length cannot make us allocate GiBs.
const maxFrame = 64 << 20

// Conn is either side's end of the sync socket once the constructor is done.
type Conn struct {
	f *os.File
}

// NewConn takes ownership of f.
func NewConn(f *os.File) *Conn { return &Conn{f: f} }

func (c *Conn) Close() error { return c.f.Close() }

// Send writes one frame, with optional fds. The socket is used blocking: the
// init is single-purpose and the runtime waits on it anyway.
func (c *Conn) Send(m Message, fds ...int) error {
	body, err := encode(m)
	if err != nil {
		return fmt.Errorf("sync socket: send %s: %w", Name(m), err)
	}
	buf := make([]byte, 4, 4+len(body))
	binary.BigEndian.PutUint32(buf, uint32(len(body)))
	buf = append(buf, body...)
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
			return fmt.Errorf("sync socket: send %s: %w", Name(m), err)
		}
		sent += n
	}
	return nil
}

// Recv reads one frame. io.EOF means the peer closed the socket between
// frames; a frame cut short is another error.
func (c *Conn) Recv() (Message, []*os.File, error) {
	fd := int(c.f.Fd())
	hdr := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*MaxFds))
	var n, oobn, flags int
	var err error
	for {
		n, oobn, flags, _, err = unix.Recvmsg(fd, hdr, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sync socket: %w", err)
	}
	if flags&unix.MSG_CTRUNC != 0 {
		err = fmt.Errorf("sync socket: a frame carried more than %d fds", MaxFds)
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
	if err != nil {
		closeAll(files)
		return nil, nil, err
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
	m, err := decode(body.Bytes())
	if err != nil {
		return nil, files, fmt.Errorf("sync socket: %w", err)
	}
	return m, files, nil
}

// Expect reads a frame and fails unless it is a T; an Error frame turns
// into that error. Attached fds come back with the message.
func Expect[T Message](c *Conn) (T, []*os.File, error) {
	var want T
	m, files, err := c.Recv()
	if err != nil {
		return want, nil, err
	}
	got, ok := m.(T)
	if !ok {
		closeAll(files)
		if e, isErr := m.(Error); isErr {
			return want, nil, e
		}
		return want, nil, fmt.Errorf("sync socket: expected %s, got %s", want.kind(), Name(m))
	}
	return got, files, nil
}

func encode(m Message) ([]byte, error) {
	var fields []byte
	var err error
	switch m := m.(type) {
	case *InitConfig:
		if m == nil {
			return nil, errors.New("no config")
		}
		fields, err = wire.Marshal(&m)
	case Ready:
		fields, err = wire.Marshal(&m)
	case Error:
		fields, err = wire.Marshal(&m)
	case IdmapSource:
		fields, err = wire.Marshal(&m)
	case FuseOverlay:
		fields, err = wire.Marshal(&m)
	}
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(m.kind())}, fields...), nil
}

// decoders turn a frame's fields into its message; a kind without fields
// decodes only from nothing.
var decoders = [...]func([]byte) (Message, error){
	kindConfig:      decodeAs[*InitConfig],
	kindCgroup:      decodeAs[Cgroup],
	kindHooks:       decodeAs[Hooks],
	kindResume:      decodeAs[Resume],
	kindConsole:     decodeAs[Console],
	kindSeccomp:     decodeAs[Seccomp],
	kindReady:       decodeAs[Ready],
	kindError:       decodeAs[Error],
	kindNamespaces:  decodeAs[Namespaces],
	kindIdmapSource: decodeAs[IdmapSource],
	kindIdmapTree:   decodeAs[IdmapTree],
	kindFuseOverlay: decodeAs[FuseOverlay],
}

func decodeAs[T Message](fields []byte) (Message, error) {
	var m T
	if err := wire.Unmarshal(fields, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func decode(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, errors.New("empty frame")
	}
	k := kind(b[0])
	if int(k) >= len(decoders) || decoders[k] == nil {
		return nil, fmt.Errorf("unknown frame (%s)", k)
	}
	m, err := decoders[k](b[1:])
	if err != nil {
		return nil, fmt.Errorf("%s frame: %w", k, err)
	}
	return m, nil
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}
