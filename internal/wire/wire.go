// Package wire is the binary encoding of the config the runtime hands to a
// container's init over the sync socket.
//
// Why not JSON: the init is a fresh process, and encoding/json's first use of
// a type builds decoders and encoders for its whole type tree. For the OCI
// spec that was about 0.45 ms of the init's 0.5 ms decode, spent on the
// critical path of every container start, whatever the config's size. This
// encoding walks only the values present, through reflection the binary
// already carries, and needs no per-type setup.
//
// Both ends are the same binary (the init is the runtime re-executed), so the
// format carries no field names: values follow in struct field order. It is
// not a storage or interchange format.
//
// Threat: the decoder reads bytes from a process that has entered the
// container's namespaces. It must not panic, loop or allocate beyond what the
// input can justify: every length is checked against the bytes that remain
// before anything is allocated.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
)

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("wire: malformed input")

// Marshal encodes what v points to, which may hold booleans, integers,
// floats, strings, slices, arrays, maps, pointers and structs of those. Only
// exported struct fields are encoded. Interfaces must be nil (the spec's only
// one is Windows-specific); channels and funcs are an error.
func Marshal(v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return nil, fmt.Errorf("wire: Marshal needs a non-nil pointer, got %T", v)
	}
	e := encoder{buf: make([]byte, 0, 4096)}
	if err := e.value(rv.Elem()); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// Unmarshal decodes b, produced by Marshal of the same type, into the value
// v points to. Trailing bytes are an error.
func Unmarshal(b []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("wire: Unmarshal needs a non-nil pointer, got %T", v)
	}
	d := decoder{buf: b}
	if err := d.value(rv.Elem()); err != nil {
		return err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.buf))
	}
	return nil
}

type encoder struct{ buf []byte }

func (e *encoder) uvarint(n uint64) { e.buf = binary.AppendUvarint(e.buf, n) }

func (e *encoder) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			e.buf = append(e.buf, 1)
		} else {
			e.buf = append(e.buf, 0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		e.buf = binary.AppendVarint(e.buf, v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		e.uvarint(v.Uint())
	case reflect.Float32, reflect.Float64:
		e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(v.Float()))
	case reflect.String:
		e.uvarint(uint64(v.Len()))
		e.buf = append(e.buf, v.String()...)
	case reflect.Pointer:
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return nil
		}
		e.buf = append(e.buf, 1)
		return e.value(v.Elem())
	case reflect.Slice:
		// nil and empty differ for the spec (an empty capability list is
		// not an absent one), so the count is shifted by one: 0 is nil.
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return nil
		}
		e.uvarint(uint64(v.Len()) + 1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			e.buf = append(e.buf, v.Bytes()...)
			return nil
		}
		return e.elems(v)
	case reflect.Array:
		return e.elems(v)
	case reflect.Map:
		if v.IsNil() {
			e.buf = append(e.buf, 0)
			return nil
		}
		e.uvarint(uint64(v.Len()) + 1)
		it := v.MapRange()
		for it.Next() {
			if err := e.value(it.Key()); err != nil {
				return err
			}
			if err := e.value(it.Value()); err != nil {
				return err
			}
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			if err := e.value(v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", t.Field(i).Name, err)
			}
		}
	case reflect.Interface:
		if !v.IsNil() {
			return fmt.Errorf("wire: cannot encode a value in %s", v.Type())
		}
		e.buf = append(e.buf, 0)
	default:
		return fmt.Errorf("wire: cannot encode %s", v.Type())
	}
	return nil
}

func (e *encoder) elems(v reflect.Value) error {
	for i := range v.Len() {
		if err := e.value(v.Index(i)); err != nil {
			return err
		}
	}
	return nil
}

type decoder struct{ buf []byte }

func (d *decoder) byte() (byte, error) {
	if len(d.buf) == 0 {
		return 0, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b, nil
}

func (d *decoder) uvarint() (uint64, error) {
	n, k := binary.Uvarint(d.buf)
	if k <= 0 {
		return 0, fmt.Errorf("%w: bad unsigned integer", ErrMalformed)
	}
	d.buf = d.buf[k:]
	return n, nil
}

// count reads a length and bounds it by the bytes left: each element takes
// at least one byte, so a larger count cannot be honest and must not drive
// an allocation. (Zero-size element types are refused by the same rule.)
func (d *decoder) count() (int, error) {
	n, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.buf)) {
		return 0, fmt.Errorf("%w: length %d exceeds the %d bytes left", ErrMalformed, n, len(d.buf))
	}
	return int(n), nil
}

// present reads a nil-or-count prefix (count shifted by one, 0 for nil).
func (d *decoder) present() (n int, ok bool, err error) {
	c, err := d.uvarint()
	if err != nil {
		return 0, false, err
	}
	if c == 0 {
		return 0, false, nil
	}
	if c-1 > uint64(len(d.buf)) {
		return 0, false, fmt.Errorf("%w: length %d exceeds the %d bytes left", ErrMalformed, c-1, len(d.buf))
	}
	return int(c - 1), true, nil
}

func (d *decoder) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		b, err := d.byte()
		if err != nil {
			return err
		}
		if b > 1 {
			return fmt.Errorf("%w: boolean byte %d", ErrMalformed, b)
		}
		v.SetBool(b == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, k := binary.Varint(d.buf)
		if k <= 0 {
			return fmt.Errorf("%w: bad integer", ErrMalformed)
		}
		d.buf = d.buf[k:]
		if v.OverflowInt(n) {
			return fmt.Errorf("%w: %d overflows %s", ErrMalformed, n, v.Type())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, err := d.uvarint()
		if err != nil {
			return err
		}
		if v.OverflowUint(n) {
			return fmt.Errorf("%w: %d overflows %s", ErrMalformed, n, v.Type())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		if len(d.buf) < 8 {
			return fmt.Errorf("%w: truncated float", ErrMalformed)
		}
		f := math.Float64frombits(binary.LittleEndian.Uint64(d.buf))
		d.buf = d.buf[8:]
		if v.OverflowFloat(f) {
			return fmt.Errorf("%w: %g overflows %s", ErrMalformed, f, v.Type())
		}
		v.SetFloat(f)
	case reflect.String:
		n, err := d.count()
		if err != nil {
			return err
		}
		v.SetString(string(d.buf[:n]))
		d.buf = d.buf[n:]
	case reflect.Pointer:
		b, err := d.byte()
		if err != nil {
			return err
		}
		switch b {
		case 0:
			v.SetZero()
			return nil
		case 1:
		default:
			return fmt.Errorf("%w: pointer byte %d", ErrMalformed, b)
		}
		p := reflect.New(v.Type().Elem())
		if err := d.value(p.Elem()); err != nil {
			return err
		}
		v.Set(p)
	case reflect.Slice:
		n, ok, err := d.present()
		if err != nil || !ok {
			return err
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := reflect.MakeSlice(v.Type(), n, n)
			copy(b.Bytes(), d.buf[:n])
			d.buf = d.buf[n:]
			v.Set(b)
			return nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			if err := d.value(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			if err := d.value(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		n, ok, err := d.present()
		if err != nil || !ok {
			return err
		}
		m := reflect.MakeMapWithSize(v.Type(), n)
		kt, vt := v.Type().Key(), v.Type().Elem()
		for range n {
			k := reflect.New(kt).Elem()
			if err := d.value(k); err != nil {
				return err
			}
			e := reflect.New(vt).Elem()
			if err := d.value(e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			if !t.Field(i).IsExported() {
				continue
			}
			if err := d.value(v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", t.Field(i).Name, err)
			}
		}
	case reflect.Interface:
		b, err := d.byte()
		if err != nil {
			return err
		}
		if b != 0 {
			return fmt.Errorf("%w: interface byte %d", ErrMalformed, b)
		}
		v.SetZero()
	default:
		return fmt.Errorf("wire: cannot decode into %s", v.Type())
	}
	return nil
}
