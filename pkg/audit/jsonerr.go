package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// decodeJSON decodes data into v and turns the decoder's errors into an
// InputError that names the line and column of a syntax error, or the
// field whose value has the wrong type.
func decodeJSON(name string, data []byte, v any) error {
	err := json.Unmarshal(data, v)
	if err == nil {
		return nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(data, se.Offset)
		return &InputError{File: name, Msg: fmt.Sprintf("malformed JSON at line %d, column %d", line, col), Err: err}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "(top level)"
		}
		return &InputError{File: name, Field: field, Msg: fmt.Sprintf("is a JSON %s, want %s", te.Value, te.Type)}
	}
	return &InputError{File: name, Msg: "malformed JSON", Err: err}
}

func lineCol(data []byte, off int64) (line, col int) {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	return line, max(col, 1)
}
