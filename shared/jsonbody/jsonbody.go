// Package jsonbody decodes request bodies strictly: one JSON value, no
// unknown fields, no trailing data, with client-facing messages that say
// exactly what is wrong.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ferric-metal/ferric/shared/fault"
)

// Decode reads r into v. Errors are fault.Invalid (or fault.TooLarge when
// the body exceeds the reader's limit) with a precise message.
func Decode(r io.Reader, v any) error {
	body, err := Read(r)
	if err != nil {
		return err
	}
	return DecodeBytes(body, v)
}

// Read reads a request body capped by http.MaxBytesReader: past the cap it
// is fault.TooLarge, any other failure fault.Invalid.
func Read(r io.Reader) ([]byte, error) {
	body, err := io.ReadAll(r)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, fault.New(fault.TooLarge, "Request body too large (larger than %d bytes).", mbe.Limit)
	}
	if err != nil {
		return nil, fault.Wrap(fault.Invalid, err, "Could not read the request body.")
	}
	return body, nil
}

// DecodeBytes decodes body into v with the same rules as Decode.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fault.New(fault.Invalid, "The request body is empty; a JSON document is required.")
	}
	if err := CheckText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fault.Wrap(fault.Invalid, err, "%s", describe(err))
	}
	if dec.More() {
		return fault.New(fault.Invalid, "Invalid JSON body: unexpected data after the JSON document.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return fault.New(fault.Invalid, "Invalid JSON body: unexpected data after the JSON document.")
	}
	return nil
}

func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("Invalid JSON body: syntax error at byte %d.", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("Invalid value for field %s: expected %s, got JSON %s.", typ.Field, kindName(typ.Type.Kind().String()), typ.Value)
		}
		return fmt.Sprintf("Invalid JSON body: expected %s, got JSON %s.", kindName(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "Invalid JSON body: the document is truncated."
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "Unknown attribute " + strings.TrimPrefix(err.Error(), "json: unknown field ") + "."
	}
	return "Invalid JSON body."
}

func kindName(k string) string {
	switch k {
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "a list"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "float64", "uint", "uint64":
		return "a number"
	}
	return k
}
