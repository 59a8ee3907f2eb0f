package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ferric-metal/ferric/shared/fault"
)

// MaxNodeDocumentBytes caps each of a node's JSON documents, measured as
// the bytes of PostgreSQL's text of the jsonb value. The 64 KiB are what
// Ironic's TEXT columns hold on MySQL; instance_info holds a configdrive
// (up to the operator API's 1 MiB body), hence more. Migration 00010
// enforces the same numbers on every write; keep the two in step.
var MaxNodeDocumentBytes = map[string]int{
	"extra":         64 << 10,
	"properties":    64 << 10,
	"driver_info":   64 << 10,
	"instance_info": 2 << 20,
}

// nodeDocumentConstraints names migration 00010's check of each document.
var nodeDocumentConstraints = map[string]string{
	"nodes_extra_size":         "extra",
	"nodes_properties_size":    "properties",
	"nodes_driver_info_size":   "driver_info",
	"nodes_instance_info_size": "instance_info",
}

// CheckNodeDocument refuses (fault.Invalid) a node document larger than its
// cap, before a write that the database would refuse anyway: callers that
// build the new document (a PATCH) call it for the message to name the size.
// It measures as PostgreSQL does (the spacing of jsonb's text); numbers
// written differently by the two (1e21) may make them disagree by a few
// bytes at the cap, with the same refusal either way.
func CheckNodeDocument(field string, doc map[string]any) error {
	limit, ok := MaxNodeDocumentBytes[field]
	if !ok {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // jsonb writes <, > and & as they are
	if err := enc.Encode(doc); err != nil {
		return fault.Wrap(fault.Invalid, err, "Invalid value for %s: not a JSON object.", field)
	}
	if n := jsonbTextLength(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))); n > limit {
		return documentTooLarge(field, fmt.Sprintf("%d bytes", n), nil)
	}
	return nil
}

// jsonbTextLength is the length of jsonb's text of a compact JSON document:
// jsonb writes a space after every ':' and ',' between values.
func jsonbTextLength(compact []byte) int {
	n, inString := len(compact), false
	for i := 0; i < len(compact); i++ {
		switch c := compact[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && (c == ':' || c == ','):
			n++
		}
	}
	return n
}

// documentTooLarge is the refusal of a document over its cap; cause is the
// database's refusal, if it was the one to refuse.
func documentTooLarge(field, size string, cause error) error {
	return fault.Wrap(fault.Invalid, cause, "Invalid value for %s: %s is larger than the %d bytes a node's %s may hold.",
		field, size, MaxNodeDocumentBytes[field], field)
}
