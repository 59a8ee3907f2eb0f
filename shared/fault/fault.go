// Package fault defines Ferric's error kinds: the small, closed set of
// outcomes a caller can act on (not found, invalid, conflict, locked...).
//
// The conductor and the store return errors of these kinds; the two APIs turn
// them into HTTP statuses with one table (Status). An error's Message is
// written for the client and must never carry internal detail; the wrapped
// cause is for logs only.
package fault

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds. Internal is the zero value so that an error of unknown origin is
// never mistaken for a client mistake.
const (
	Internal         Kind = iota // a fault of ours; details go to the log only
	Invalid                      // the request is malformed or breaks a rule
	NotFound                     // the named thing does not exist
	Conflict                     // the request clashes with the current state (duplicate name, MAC...)
	Locked                       // another task holds the node
	Unauthorized                 // missing or bad credentials
	Forbidden                    // credentials fine, permission lacking
	TooLarge                     // request body over its limit
	NotAcceptable                // unsupported API version
	Unavailable                  // temporarily unable (pool full, database down); retry later
	TooManyRequests              // rate limit exceeded
	MethodNotAllowed             // the path exists, the verb does not
)

var statusByKind = map[Kind]int{
	Internal:         http.StatusInternalServerError,
	Invalid:          http.StatusBadRequest,
	NotFound:         http.StatusNotFound,
	Conflict:         http.StatusConflict,
	Locked:           http.StatusConflict,
	Unauthorized:     http.StatusUnauthorized,
	Forbidden:        http.StatusForbidden,
	TooLarge:         http.StatusRequestEntityTooLarge,
	NotAcceptable:    http.StatusNotAcceptable,
	Unavailable:      http.StatusServiceUnavailable,
	TooManyRequests:  http.StatusTooManyRequests,
	MethodNotAllowed: http.StatusMethodNotAllowed,
}

// Error is an error with a kind and a message that is safe to show a client.
type Error struct {
	Kind    Kind
	Message string // for the client
	Err     error  // the cause, for logs; may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a kind sentinel of the same kind, so that
// errors.Is(err, fault.ErrNotFound) works for every not-found error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Err == nil && t.Kind == e.Kind
}

// Sentinels for errors.Is; they match any Error of their kind.
var (
	ErrInvalid     = &Error{Kind: Invalid}
	ErrNotFound    = &Error{Kind: NotFound}
	ErrConflict    = &Error{Kind: Conflict}
	ErrLocked      = &Error{Kind: Locked}
	ErrUnavailable = &Error{Kind: Unavailable}
)

// New returns an Error of kind with a formatted client message.
func New(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an Error of kind with a client message and a hidden cause.
func Wrap(kind Kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), Err: cause}
}

// KindOf returns the kind of the first Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Message returns the client-safe message of err. Errors that are not of
// this package yield a generic text, so internal detail never leaks.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal {
		return e.Message
	}
	return "Internal server error. Check the server logs."
}

// Status maps err to its HTTP status: the single table both APIs use.
func Status(err error) int {
	return statusByKind[KindOf(err)]
}
