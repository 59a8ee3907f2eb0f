package store

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"io/fs"
)

// JSONObject is a JSONB column holding an object.
type JSONObject map[string]any

// Value encodes the object; nil is stored as {}.
func (o JSONObject) Value() (driver.Value, error) {
	if o == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]any(o))
}

// Scan decodes a JSONB object.
func (o *JSONObject) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case nil:
		*o = JSONObject{}
		return nil
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		return fmt.Errorf("JSONObject: cannot scan %T", src)
	}
	if string(b) == "{}" { // the common case, without the decoder
		*o = JSONObject{}
		return nil
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*o = m
	return nil
}

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err) // the embedded directory is fixed at build time
	}
	return sub
}
