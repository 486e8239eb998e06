package wire

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every exported field reachable from v to a non-zero value
// derived from seed: pointers allocated, slices and maps with two entries.
// A round trip of the result proves the encoding covers every field of the
// type, including ones added by a future runtime-spec release.
func fill(v reflect.Value, seed *int, depth int) {
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(n%2 == 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(n%100) - 50)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		v.SetUint(uint64(n%200) + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) / 4)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d-é\x00", n))
	case reflect.Pointer:
		if depth > 8 {
			return
		}
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed, depth+1)
		v.Set(p)
	case reflect.Slice:
		if depth > 8 {
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i), seed, depth+1)
		}
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), seed, depth+1)
		}
	case reflect.Map:
		if depth > 8 {
			return
		}
		m := reflect.MakeMap(v.Type())
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			e := reflect.New(v.Type().Elem()).Elem()
			fill(k, seed, depth+1)
			fill(e, seed, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed, depth+1)
			}
		}
	}
}

func roundTrip[T any](t *testing.T, in *T) *T {
	t.Helper()
	b, err := Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	out := new(T)
	if err := Unmarshal(b, out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	return out
}

func TestRoundTripCoversEveryFieldOfTheSpec(t *testing.T) {
	in := new(specs.Spec)
	seed := 0
	fill(reflect.ValueOf(in).Elem(), &seed, 0)
	if in.Linux == nil || in.Linux.Resources == nil || len(in.Linux.Resources.Devices) != 2 || in.Process.Capabilities == nil {
		t.Fatal("fill did not reach the nested fields")
	}
	if out := roundTrip(t, in); !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip changed the spec:\n in %+v\nout %+v", in, out)
	}
}

// The spec gives nil and empty different meanings (no capability list versus
// an empty one, no env versus an empty env), so both must survive.
func TestRoundTripKeepsNilApartFromEmpty(t *testing.T) {
	type T struct {
		NilSlice   []string
		EmptySlice []string
		NilBytes   []byte
		EmptyBytes []byte
		NilMap     map[string]string
		EmptyMap   map[string]string
		NilPtr     *int
		ZeroPtr    *int
		unexported int
	}
	zero := 0
	in := &T{EmptySlice: []string{}, EmptyBytes: []byte{}, EmptyMap: map[string]string{}, ZeroPtr: &zero, unexported: 7}
	out := roundTrip(t, in)
	if out.NilSlice != nil || out.EmptySlice == nil || out.NilBytes != nil || out.EmptyBytes == nil ||
		out.NilMap != nil || out.EmptyMap == nil || out.NilPtr != nil || out.ZeroPtr == nil || *out.ZeroPtr != 0 {
		t.Fatalf("nil/empty not preserved: %+v", out)
	}
	if out.unexported != 0 {
		t.Fatal("unexported field was transported")
	}
}

func TestRoundTripExtremes(t *testing.T) {
	type T struct {
		I64 int64
		I8  int8
		U64 uint64
		F   float64
		A   [3]uint16
	}
	in := &T{I64: math.MinInt64, I8: -128, U64: math.MaxUint64, F: math.Inf(-1), A: [3]uint16{0, 1, 65535}}
	if out := roundTrip(t, in); *out != *in {
		t.Fatalf("got %+v, want %+v", out, in)
	}
}

func TestMarshalRefusesKindsItCannotCarry(t *testing.T) {
	for _, v := range []any{
		&struct{ F func() }{},
		&struct{ C chan int }{},
		&struct{ I any }{I: 1},
		struct{ S string }{},
	} {
		if _, err := Marshal(v); err == nil {
			t.Errorf("Marshal(%T) succeeded", v)
		}
	}
}

func TestUnmarshalRejectsMalformedInput(t *testing.T) {
	type T struct {
		B bool
		S string
		L []string
		P *int8
		M map[string]int
	}
	good, err := Marshal(&T{B: true, S: "x", L: []string{"a"}, M: map[string]int{"k": 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"bad boolean", append([]byte{7}, good[1:]...)},
		{"string longer than the input", []byte{1, 0x80, 0x80, 0x04, 'x'}},
		{"unterminated varint", []byte{1, 0xff, 0xff}},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
		{"slice count beyond the input", []byte{1, 1, 'x', 0xff, 0xff, 0xff, 0xff, 0x0f}},
		{"bad pointer byte", []byte{1, 1, 'x', 0, 2}},
		{"int8 overflow", []byte{1, 1, 'x', 0, 1, 0x80, 0x04}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Unmarshal(tc.in, new(T))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	if err := Unmarshal(good, T{}); err == nil || errors.Is(err, ErrMalformed) {
		t.Fatalf("a non-pointer target: got %v", err)
	}
}

// FuzzUnmarshal: whatever arrives, decoding a spec returns a value or an
// error, never panics, and what it accepts survives another round trip.
func FuzzUnmarshal(f *testing.F) {
	s := new(specs.Spec)
	seed := 0
	fill(reflect.ValueOf(s).Elem(), &seed, 5)
	b, err := Marshal(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	small, _ := Marshal(&specs.Spec{Version: "1.0.2", Process: &specs.Process{Args: []string{"sh"}}})
	f.Add(small)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		out := new(specs.Spec)
		if err := Unmarshal(data, out); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		again := new(specs.Spec)
		b, err := Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := Unmarshal(b, again); err != nil || !reflect.DeepEqual(out, again) {
			t.Fatalf("accepted input does not survive a second round trip: %v", err)
		}
	})
}
