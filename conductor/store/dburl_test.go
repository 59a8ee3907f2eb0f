package store_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/store"
)

// A malformed database URL is refused at once, not retried as if the
// database were down, and the refusal never prints its password.
func TestOpenRefusesMalformedURL(t *testing.T) {
	t.Parallel()
	const password = "s3cr3t-pw"
	for _, dsn := range []string{
		"postgres://ferric:" + password + "@db.example:54x2/ferric",    // bad port
		"postgres://ferric:" + password + "@db.example:5432/ferric%zz", // bad escape
		"postgres://ferric:" + password + "@[::1/ferric",               // bad host
		"mysql://ferric:" + password + "@db.example/ferric",            // another database
		"host=db.example password='" + password + " dbname=ferric",     // unterminated quote
		"host=db.example " + password,                                  // no "="
	} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		db, err := store.Open(context.Background(), dsn, 1, time.Hour, log)
		if err == nil {
			db.Close()
			t.Errorf("%s: opened", dsn)
			continue
		}
		if !strings.Contains(err.Error(), "malformed") {
			t.Errorf("%s: %v, want it called malformed", dsn, err)
		}
		if strings.Contains(err.Error()+logs.String(), password) {
			t.Errorf("%s: the password is printed: %v; logs: %s", dsn, err, logs.String())
		}
		if logs.Len() > 0 {
			t.Errorf("%s: retried as unreachable: %s", dsn, logs.String())
		}
	}
}

func TestCheckDatabaseURLAcceptsBothForms(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"postgres://ferric:pw@db.example:5432/ferric?sslmode=require",
		"postgresql://ferric@localhost/ferric",
		"host=/run/postgresql dbname=ferric user=ferric",
	} {
		if err := store.CheckDatabaseURL(dsn); err != nil {
			t.Errorf("%s: %v", dsn, err)
		}
	}
}
