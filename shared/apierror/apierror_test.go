package apierror_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/ferric-metal/ferric/shared/apierror"
	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/pgcluster"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// abort renders err as a handler would and returns the response.
func abort(err error) *httptest.ResponseRecorder {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	c.Request = httptest.NewRequest("GET", "/v1/nodes", nil)
	apierror.Abort(c, quiet, err)
	return w
}

// TestDatabaseOutageIs503: errors of a real PostgreSQL that went away
// (connection refused), and the codes it answers while restarting, are 503
// with Retry-After, not 500; a wrong statement stays 500.
func TestDatabaseOutageIs503(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cluster, err := pgcluster.Start(ctx, filepath.Join(t.TempDir(), "pg"))
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlx.Open("postgres", cluster.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	syntaxErr := db.GetContext(ctx, &n, `SELEC 1`)
	if err := db.GetContext(ctx, &n, `SELECT 1`); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	downErr := db.GetContext(ctx, &n, `SELECT 1`)
	_, beginErr := db.BeginTxx(ctx, nil)

	for name, tc := range map[string]struct {
		err    error
		status int
	}{
		"connection refused":      {fmt.Errorf("get node: %w", downErr), 503},
		"begin refused":           {fmt.Errorf("begin transaction: %w", beginErr), 503},
		"starting up (57P03)":     {&pq.Error{Code: "57P03", Message: "the database system is starting up"}, 503},
		"shutting down (57P01)":   {fmt.Errorf("x: %w", &pq.Error{Code: "57P01"}), 503},
		"too many clients":        {&pq.Error{Code: "53300"}, 503},
		"deadline waiting for it": {fmt.Errorf("x: %w", context.DeadlineExceeded), 503},
		"wrong statement":         {syntaxErr, 500},
		"a bug of ours":           {errors.New("nil map"), 500},
		"a fault keeps its kind":  {fault.Wrap(fault.Conflict, &pq.Error{Code: "57P03"}, "Node busy."), 409},
	} {
		w := abort(tc.err)
		if w.Code != tc.status {
			t.Errorf("%s (%v): %d, want %d", name, tc.err, w.Code, tc.status)
		}
		if got := w.Header().Get("Retry-After"); (tc.status == 503) != (got != "") {
			t.Errorf("%s: Retry-After %q on a %d", name, got, w.Code)
		}
	}
}

// TestEvery503SaysWhenToRetry: a 503 written by anyone carries Retry-After.
func TestEvery503SaysWhenToRetry(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	apierror.Write(w, http.StatusServiceUnavailable, "busy")
	if w.Header().Get("Retry-After") != apierror.RetryAfterSeconds {
		t.Errorf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	w = httptest.NewRecorder()
	w.Header().Set("Retry-After", "7")
	apierror.Write(w, http.StatusServiceUnavailable, "busy")
	if w.Header().Get("Retry-After") != "7" {
		t.Errorf("the caller's Retry-After was replaced: %q", w.Header().Get("Retry-After"))
	}
}
