// Package bpfvm runs a seccomp classic-BPF program in user space over a
// struct seccomp_data, and prints such programs one instruction per line.
//
// The threat it answers is a filter that does not do what its profile says.
// A profile is reviewed as JSON, but the kernel runs the BPF that libseccomp
// generated from it, and the two can differ: libseccomp drops a conditional
// rule when an unconditional one exists for the same syscall, rewrites
// socket rules into socketcall on i386, and compares 64-bit arguments as two
// 32-bit halves. Running the exported program over chosen syscalls shows what
// the kernel will decide, so `bulwark seccomp explain` and the tests can check
// the profile's reading against the real program instead of trusting either.
//
// The interpreter follows the kernel's seccomp_check_filter rules: only the
// instructions the kernel accepts in a seccomp filter are executed, loads are
// 32-bit and aligned within seccomp_data, and every jump goes forward.
package bpfvm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Data is the kernel's struct seccomp_data: what a filter sees of a syscall.
type Data struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// dataSize is sizeof(struct seccomp_data).
const dataSize = 64

// bytes lays d out exactly as the kernel does on this (little-endian) host,
// so that a program's absolute loads read the same words they would in the
// kernel, including the two halves of each 64-bit argument.
func (d Data) bytes() [dataSize]byte {
	var b [dataSize]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(d.Nr))
	binary.NativeEndian.PutUint32(b[4:], d.Arch)
	binary.NativeEndian.PutUint64(b[8:], d.InstructionPointer)
	for i, a := range d.Args {
		binary.NativeEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// Classic BPF opcode parts (linux/bpf_common.h).
const (
	clsLD   = 0x00
	clsLDX  = 0x01
	clsST   = 0x02
	clsSTX  = 0x03
	clsALU  = 0x04
	clsJMP  = 0x05
	clsRET  = 0x06
	clsMISC = 0x07

	modeIMM = 0x00
	modeABS = 0x20
	modeMEM = 0x60
	modeLEN = 0x80

	srcK = 0x00
	srcX = 0x08

	memWords = 16 // BPF_MEMWORDS
	maxInsns = 4096
)

// ErrInvalid means the program is one the kernel would refuse to load.
var ErrInvalid = errors.New("invalid seccomp BPF program")

// Decode turns the raw bytes of a program (an array of struct sock_filter,
// as seccomp_export_bpf writes it) into instructions.
func Decode(raw []byte) ([]unix.SockFilter, error) {
	const insnSize = int(unsafe.Sizeof(unix.SockFilter{}))
	if len(raw) == 0 || len(raw)%insnSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte instructions", ErrInvalid, len(raw), insnSize)
	}
	prog := make([]unix.SockFilter, len(raw)/insnSize)
	for i := range prog {
		b := raw[i*insnSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}

// Run executes prog over d and returns the filter's verdict (a SECCOMP_RET_*
// value with its data). It returns an error, naming the instruction, for
// anything the kernel's checker would have refused, rather than guessing.
func Run(prog []unix.SockFilter, d Data) (uint32, error) {
	if len(prog) == 0 || len(prog) > maxInsns {
		return 0, fmt.Errorf("%w: %d instructions (the kernel takes 1..%d)", ErrInvalid, len(prog), maxInsns)
	}
	data := d.bytes()
	var a, x uint32
	var mem [memWords]uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		bad := func(why string) error {
			return fmt.Errorf("%w: instruction %d (%s): %s", ErrInvalid, pc, Format(in), why)
		}
		switch in.Code & 0x07 {
		case clsLD, clsLDX:
			var v uint32
			switch in.Code & 0xe0 {
			case modeABS:
				if in.Code&0x18 != unix.BPF_W || in.Code&0x07 != clsLD {
					return 0, bad("seccomp allows only 32-bit absolute loads into A")
				}
				if in.K%4 != 0 || in.K+4 > dataSize {
					return 0, bad("load outside seccomp_data or unaligned")
				}
				v = binary.NativeEndian.Uint32(data[in.K:])
			case modeIMM:
				v = in.K
			case modeMEM:
				if in.K >= memWords {
					return 0, bad("scratch memory index out of range")
				}
				v = mem[in.K]
			case modeLEN:
				v = dataSize
			default:
				return 0, bad("load mode not allowed in seccomp")
			}
			if in.Code&0x07 == clsLD {
				a = v
			} else {
				x = v
			}
		case clsST, clsSTX:
			if in.K >= memWords {
				return 0, bad("scratch memory index out of range")
			}
			if in.Code&0x07 == clsST {
				mem[in.K] = a
			} else {
				mem[in.K] = x
			}
		case clsALU:
			operand := in.K
			if in.Code&srcX != 0 {
				operand = x
			}
			switch in.Code & 0xf0 {
			case unix.BPF_ADD:
				a += operand
			case unix.BPF_SUB:
				a -= operand
			case unix.BPF_MUL:
				a *= operand
			case unix.BPF_DIV:
				if operand == 0 {
					return 0, nil // the kernel's interpreter returns 0 (kill) on division by zero
				}
				a /= operand
			case unix.BPF_MOD:
				if operand == 0 {
					return 0, nil
				}
				a %= operand
			case unix.BPF_AND:
				a &= operand
			case unix.BPF_OR:
				a |= operand
			case unix.BPF_XOR:
				a ^= operand
			case unix.BPF_LSH:
				a <<= operand & 31
			case unix.BPF_RSH:
				a >>= operand & 31
			case unix.BPF_NEG:
				a = -a
			default:
				return 0, bad("unknown ALU operation")
			}
		case clsJMP:
			var next int
			if in.Code&0xf0 == unix.BPF_JA {
				next = pc + 1 + int(in.K)
			} else {
				operand := in.K
				if in.Code&srcX != 0 {
					operand = x
				}
				var taken bool
				switch in.Code & 0xf0 {
				case unix.BPF_JEQ:
					taken = a == operand
				case unix.BPF_JGT:
					taken = a > operand
				case unix.BPF_JGE:
					taken = a >= operand
				case unix.BPF_JSET:
					taken = a&operand != 0
				default:
					return 0, bad("unknown jump")
				}
				next = pc + 1 + int(in.Jf)
				if taken {
					next = pc + 1 + int(in.Jt)
				}
			}
			if next >= len(prog) {
				return 0, bad("jump past the end of the program")
			}
			pc = next - 1 // the loop adds one
		case clsRET:
			switch in.Code & 0x18 {
			case srcK:
				return in.K, nil
			case 0x10: // BPF_A
				return a, nil
			default:
				return 0, bad("return source not allowed in seccomp")
			}
		case clsMISC:
			switch in.Code & 0xf8 {
			case 0x00: // TAX
				x = a
			case 0x80: // TXA
				a = x
			default:
				return 0, bad("unknown misc operation")
			}
		}
	}
	return 0, fmt.Errorf("%w: ran off the end without a return", ErrInvalid)
}
