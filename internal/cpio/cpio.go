// Package cpio writes the "newc" cpio format, the one the kernel unpacks
// as an initramfs: the VM wing's guest initramfs and the VM tests' guests.
//
// Entries are written from memory, never archived from a host path by the
// package itself, so nothing on the host ends up in a guest by accident;
// callers that archive a tree walk it themselves. Not a general archiver:
// no hard links, no reading, names are written as given.
package cpio

import (
	"bufio"
	"fmt"
	"io"
	"syscall"
)

// Writer appends entries to an archive; Close writes the trailer.
type Writer struct {
	w   *bufio.Writer
	ino uint32
}

// NewWriter starts an archive on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 1<<20)} }

func (c *Writer) pad(n int) error {
	if r := n % 4; r != 0 {
		_, err := c.w.Write(make([]byte, 4-r))
		return err
	}
	return nil
}

// Entry writes one header, the name and the data (a symlink's data is its
// target). rdevMajor and rdevMinor matter only for device nodes.
func (c *Writer) Entry(name string, mode, uid, gid, rdevMajor, rdevMinor uint32, data []byte) error {
	c.ino++
	nlink := uint32(1)
	if mode&syscall.S_IFMT == syscall.S_IFDIR {
		nlink = 2
	}
	hdr := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		c.ino, mode, uid, gid, nlink, 0, len(data), 0, 0, rdevMajor, rdevMinor, len(name)+1, 0)
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

// Close writes the trailer and flushes; it does not close the underlying
// writer.
func (c *Writer) Close() error {
	if err := c.Entry("TRAILER!!!", 0, 0, 0, 0, 0, nil); err != nil {
		return err
	}
	return c.w.Flush()
}
