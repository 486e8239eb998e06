package vm

import (
	"bufio"
	"fmt"
	"io"
	"syscall"
)

// cpioWriter writes the "newc" format the kernel unpacks as an initramfs.
// Entries are written from memory (the agent binary, modules, a module
// list) so that nothing on the host is archived by accident.
type cpioWriter struct {
	w   *bufio.Writer
	ino uint32
}

func newCpio(w io.Writer) *cpioWriter { return &cpioWriter{w: bufio.NewWriterSize(w, 1<<20)} }

func (c *cpioWriter) pad(n int) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

func (c *cpioWriter) entry(name string, mode uint32, rdevMajor, rdevMinor uint32, data []byte) error {
	c.ino++
	nlink := uint32(1)
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
	if _, err := io.WriteString(c.w, hdr+name+"\x00"); err != nil {
		return err
	}
	if err := c.pad(len(hdr) + len(name) + 1); err != nil {
		return err
	}
	if _, err := c.w.Write(data); err != nil {
		return err
	}
	return c.pad(len(data))
}

func (c *cpioWriter) dir(name string) error { return c.entry(name, syscall.S_IFDIR|0o755, 0, 0, nil) }

func (c *cpioWriter) file(name string, mode uint32, data []byte) error {
	return c.entry(name, syscall.S_IFREG|mode, 0, 0, data)
}

func (c *cpioWriter) close() error {
	if err := c.entry("TRAILER!!!", 0, 0, 0, nil); err != nil {
		return err
	}
	return c.w.Flush()
}
