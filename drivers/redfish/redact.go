package redfish

import "strings"

const redacted = "[REDACTED]"

// redactedError is an error whose message had secrets removed. It still
// unwraps to the original so errors.Is and errors.As keep working.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact removes every secret from err's message. The driver never puts a
// credential in an error itself; this guards against a BMC echoing one back.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := redactString(msg, secrets); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

func redactString(s string, secrets []string) string {
	for _, secret := range secrets {
		if secret != "" {
			s = strings.ReplaceAll(s, secret, redacted)
		}
	}
	return s
}
