package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ConfigFile is the name of the configuration file inside a bundle.
const ConfigFile = "config.json"

// maxConfigSize bounds how much of config.json is read. Real configs are a
// few KiB (a large seccomp profile is ~100 KiB); the limit only stops a
// bundle from making the runtime allocate without bound.
const maxConfigSize = 64 << 20

// maxJSONDepth matches encoding/json's own nesting limit, so the walker
// below refuses exactly the inputs the decoder would refuse, and recursion
// stays bounded on hostile input.
const maxJSONDepth = 10000

// LoadBundle reads <bundle>/config.json, decodes it into a runtime-spec
// Spec and validates it. The returned warnings (unknown or misspelt fields,
// duplicate keys, deprecated forms) never stop the load: runtime-spec says
// runtimes MUST ignore unknown properties, but a user who wrote
// "noNewPrivilege" needs to hear that it did nothing. seccomp checks
// linux.seccomp, as for Validate.
func LoadBundle(bundle string, seccomp SeccompValidator) (*specs.Spec, []string, error) {
	data, err := readConfig(bundle)
	if err != nil {
		return nil, nil, err
	}
	s, warns, err := decodeConfig(data)
	if err != nil {
		return nil, warns, err
	}
	vw, err := validate(s, bundle, seccomp)
	warns = append(warns, vw...)
	if err != nil {
		return nil, warns, err
	}
	return s, warns, nil
}

func readConfig(bundle string) ([]byte, error) {
	path := filepath.Join(bundle, ConfigFile)
	// O_NONBLOCK: a FIFO planted as config.json must not hang the runtime
	// in open(2); the regular-file check below then rejects it.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil, fmt.Errorf("%w: %s does not exist; is %q an OCI bundle directory? (`bulwark spec` writes a template)", ErrNoConfig, path, bundle)
		}
		return nil, fmt.Errorf("open bundle config: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat bundle config: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, &FieldError{File: ConfigFile, Msg: fmt.Sprintf("%s is a %s, not a regular file", path, fileKind(st.Mode())), Err: ErrInvalidConfig}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, &FieldError{File: ConfigFile, Msg: fmt.Sprintf("%s is larger than %d MiB", path, maxConfigSize>>20), Err: ErrInvalidConfig}
	}
	return data, nil
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	case m&os.ModeDevice != 0:
		return "device"
	default:
		return "special file"
	}
}

// decodeConfig decodes with encoding/json (the authority on what the Go
// structs receive) and, alongside, walks the token stream against the
// structs' json tags. The walk is what gives errors an exact path with array
// indices ("process.rlimits[1].hard") and a line:column, and finds unknown
// fields at any depth; a plain Unmarshal can do neither.
func decodeConfig(data []byte) (*specs.Spec, []string, error) {
	w := &walker{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	walkErr := w.walkTop()

	var s specs.Spec
	err := json.Unmarshal(data, &s)
	if err == nil {
		return &s, w.warns, nil
	}
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	if errors.As(err, &se) {
		// Syntax errors outrank type errors (the decoder checks the whole
		// document first); the decoder's offset is exact, the walker adds
		// the path of the value being read when the syntax broke.
		fe := &FieldError{File: ConfigFile, Msg: "invalid JSON: " + se.Error(), Err: fmt.Errorf("%w: %w", ErrInvalidConfig, err)}
		fe.Line, fe.Column = lineCol(data, se.Offset-1)
		if walkErr != nil && walkErr.syntax {
			fe.Field = walkErr.Field
		}
		return nil, w.warns, fe
	}
	if walkErr != nil && !walkErr.syntax {
		return nil, w.warns, &walkErr.FieldError
	}
	if errors.As(err, &te) {
		fe := &FieldError{File: ConfigFile, Field: te.Field, Msg: fmt.Sprintf("cannot use JSON %s as %s", te.Value, te.Type), Err: fmt.Errorf("%w: %w", ErrInvalidConfig, err)}
		fe.Line, fe.Column = lineCol(data, te.Offset)
		return nil, w.warns, fe
	}
	return nil, w.warns, &FieldError{File: ConfigFile, Msg: err.Error(), Err: fmt.Errorf("%w: %w", ErrInvalidConfig, err)}
}

// lineCol converts a byte offset into 1-based line and column (in bytes).
func lineCol(data []byte, off int64) (line, col int) {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte{'\n'}) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1) + 1
	return line, col
}

type walkError struct {
	FieldError
	syntax bool
}

type walker struct {
	data  []byte
	dec   *json.Decoder
	warns []string
}

func (w *walker) walkTop() *walkError {
	if len(bytes.TrimSpace(w.data)) == 0 {
		return &walkError{FieldError: FieldError{File: ConfigFile, Msg: "file is empty", Err: ErrInvalidConfig}, syntax: true}
	}
	return w.walk(reflect.TypeOf(specs.Spec{}), "", 0)
}

// valueStart returns the offset of the next value: InputOffset points just
// past the previous token, before any separator and whitespace.
func (w *walker) valueStart() int64 {
	off := w.dec.InputOffset()
	for off < int64(len(w.data)) {
		switch w.data[off] {
		case ' ', '\t', '\r', '\n', ':', ',':
			off++
			continue
		}
		break
	}
	return off
}

func (w *walker) fail(path string, off int64, syntax bool, err error, msg string) *walkError {
	fe := FieldError{File: ConfigFile, Field: path, Msg: msg, Err: ErrInvalidConfig}
	if err != nil {
		fe.Err = fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	fe.Line, fe.Column = lineCol(w.data, off)
	return &walkError{FieldError: fe, syntax: syntax}
}

func (w *walker) token(path string) (json.Token, int64, *walkError) {
	off := w.valueStart()
	tok, err := w.dec.Token()
	if err != nil {
		msg := "invalid JSON: " + err.Error()
		if errors.Is(err, io.EOF) {
			msg = "invalid JSON: unexpected end of file"
		}
		return nil, off, w.fail(path, off, true, err, msg)
	}
	return tok, off, nil
}

func joinField(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// walk consumes exactly one JSON value and checks it against t. A nil t
// (unknown field, or an interface{} such as windows.credentialSpec) accepts
// anything.
func (w *walker) walk(t reflect.Type, path string, depth int) *walkError {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && t.Kind() == reflect.Interface {
		t = nil
	}
	tok, off, werr := w.token(path)
	if werr != nil {
		return werr
	}
	if depth >= maxJSONDepth {
		return w.fail(path, off, true, nil, "invalid JSON: exceeded max depth")
	}
	switch tok := tok.(type) {
	case json.Delim:
		switch {
		case tok == '{' && (t == nil || t.Kind() == reflect.Struct):
			return w.walkStruct(t, path, depth)
		case tok == '{' && t.Kind() == reflect.Map:
			return w.walkMap(t, path, depth)
		case tok == '[' && (t == nil || t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			var elem reflect.Type
			if t != nil {
				elem = t.Elem()
			}
			for i := 0; w.dec.More(); i++ {
				if werr := w.walk(elem, path+"["+strconv.Itoa(i)+"]", depth+1); werr != nil {
					return werr
				}
			}
			_, _, werr := w.token(path)
			return werr
		}
		what := "an object"
		if tok == '[' {
			what = "an array"
		}
		return w.fail(path, off, false, nil, fmt.Sprintf("expected %s, got %s", describeType(t), what))
	case nil:
		// null leaves any Go value at its zero value, as encoding/json does.
		return nil
	case bool:
		if t == nil || t.Kind() == reflect.Bool {
			return nil
		}
		return w.fail(path, off, false, nil, fmt.Sprintf("expected %s, got boolean %v", describeType(t), tok))
	case string:
		if t == nil || t.Kind() == reflect.String {
			return nil
		}
		return w.fail(path, off, false, nil, fmt.Sprintf("expected %s, got string %s", describeType(t), truncQuote(tok)))
	case json.Number:
		if t == nil || numberFits(tok, t) {
			return nil
		}
		return w.fail(path, off, false, nil, fmt.Sprintf("expected %s, got number %s", describeType(t), truncate(tok.String())))
	}
	return w.fail(path, off, true, nil, fmt.Sprintf("invalid JSON: unexpected token %v", tok))
}

func (w *walker) walkStruct(t reflect.Type, path string, depth int) *walkError {
	var fs *fieldSet
	if t != nil {
		fs = fieldsOf(t)
	}
	seen := map[string]bool{}
	for w.dec.More() {
		tok, _, werr := w.token(path)
		if werr != nil {
			return werr
		}
		key, _ := tok.(string)
		if fs == nil {
			if werr := w.walk(nil, joinField(path, key), depth+1); werr != nil {
				return werr
			}
			continue
		}
		name, ft, ok := fs.lookup(key)
		switch {
		case !ok:
			w.warns = append(w.warns, fmt.Sprintf("%s: unknown field %q ignored", ConfigFile, joinField(path, key)))
			if werr := w.walk(nil, joinField(path, key), depth+1); werr != nil {
				return werr
			}
			continue
		case name != key:
			w.warns = append(w.warns, fmt.Sprintf("%s: field %q used as %q (Go matches JSON names case-insensitively; other runtimes will ignore it)",
				ConfigFile, joinField(path, key), joinField(path, name)))
		}
		if seen[name] {
			w.warns = append(w.warns, fmt.Sprintf("%s: field %q appears more than once; the last value wins", ConfigFile, joinField(path, name)))
		}
		seen[name] = true
		if werr := w.walk(ft, joinField(path, name), depth+1); werr != nil {
			return werr
		}
	}
	_, _, werr := w.token(path)
	return werr
}

func (w *walker) walkMap(t reflect.Type, path string, depth int) *walkError {
	seen := map[string]bool{}
	for w.dec.More() {
		tok, _, werr := w.token(path)
		if werr != nil {
			return werr
		}
		key, _ := tok.(string)
		sub := path + "[" + strconv.Quote(key) + "]"
		if seen[key] {
			w.warns = append(w.warns, fmt.Sprintf("%s: key %s appears more than once; the last value wins", ConfigFile, sub))
		}
		seen[key] = true
		if werr := w.walk(t.Elem(), sub, depth+1); werr != nil {
			return werr
		}
	}
	_, _, werr := w.token(path)
	return werr
}

func numberFits(n json.Number, t reflect.Type) bool {
	s := n.String()
	var err error
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		_, err = strconv.ParseInt(s, 10, t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		_, err = strconv.ParseUint(s, 10, t.Bits())
	case reflect.Float32, reflect.Float64:
		_, err = strconv.ParseFloat(s, t.Bits())
	default:
		return false
	}
	return err == nil
}

func describeType(t reflect.Type) string {
	if t == nil {
		return "any value"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer (%d-bit signed)", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprintf("a non-negative integer (%d-bit)", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func truncQuote(s string) string {
	if len(s) > 40 {
		return strconv.Quote(s[:40]) + "..."
	}
	return strconv.Quote(s)
}

// fieldSet is the JSON view of a struct type: names as encoding/json
// sees them, with embedded structs' fields promoted.
type fieldSet struct {
	byName map[string]reflect.Type
	names  []string
}

var fieldCache sync.Map // reflect.Type -> *fieldSet

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]reflect.Type{}}
	collectFields(t, fs, 0)
	for n := range fs.byName {
		fs.names = append(fs.names, n)
	}
	sort.Strings(fs.names)
	fieldCache.Store(t, fs)
	return fs
}

func collectFields(t reflect.Type, fs *fieldSet, depth int) {
	// Outer fields win over promoted ones, as in encoding/json, so visit
	// direct fields first and never overwrite.
	var embedded []reflect.Type
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			ft := sf.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				embedded = append(embedded, ft)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if _, dup := fs.byName[name]; !dup {
			fs.byName[name] = sf.Type
		}
	}
	if depth < 8 {
		for _, et := range embedded {
			collectFields(et, fs, depth+1)
		}
	}
}

// lookup finds key the way encoding/json does: an exact match first, then a
// case-insensitive one. It returns the canonical name.
func (fs *fieldSet) lookup(key string) (string, reflect.Type, bool) {
	if t, ok := fs.byName[key]; ok {
		return key, t, true
	}
	for _, n := range fs.names {
		if strings.EqualFold(n, key) {
			return n, fs.byName[n], true
		}
	}
	return "", nil, false
}
