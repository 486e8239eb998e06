package vm

import (
	"syscall"

	"github.com/bulwark-sec/bulwark/internal/cpio"
)

// cpioWriter is the guest initramfs: root-owned entries written from
// memory (the agent binary, modules, a module list).
type cpioWriter struct{ *cpio.Writer }

func (c cpioWriter) dir(name string) error {
	return c.Entry(name, syscall.S_IFDIR|0o755, 0, 0, 0, 0, nil)
}

func (c cpioWriter) file(name string, mode uint32, data []byte) error {
	return c.Entry(name, syscall.S_IFREG|mode, 0, 0, 0, 0, data)
}
