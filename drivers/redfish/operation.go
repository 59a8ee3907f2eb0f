package redfish

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/ferric-metal/ferric/drivers"
)

// maxLogoutReserve caps the part of an operation's deadline kept back so a
// session can still be logged out when the operation itself times out.
const maxLogoutReserve = 3 * time.Second

const serviceRootPath = "/redfish/v1/"

// operation is one driver call on one node: its BMC client, the service
// root once read, and the session to log out.
type operation struct {
	cfg         *bmcConfig
	c           *bmcClient
	root        *serviceRoot
	token       string // the session's token, kept to redact it
	sessionPath string
}

// serviceRoot holds the links of /redfish/v1/ the driver follows.
type serviceRoot struct {
	Systems schemas.Link
	Links   struct {
		Sessions schemas.Link
	}
}

// run performs fn as operation op on node n: it validates driver_info,
// picks the cached transport, logs in and out for session auth, and turns
// any failure into an error that names the node and op and holds no secret.
func (d *Driver) run(ctx context.Context, n drivers.Node, op string, fn func(*operation) error) (err error) {
	var o *operation
	defer func() {
		if err != nil {
			err = redact(opError(n, op, err), o.secrets(n.DriverInfo))
		}
	}()
	cfg, err := parseInfo(n.DriverInfo)
	if err != nil {
		return err
	}
	rt, err := d.transports.get(cfg)
	if err != nil {
		return err
	}
	opCtx, cancel := ctx, context.CancelFunc(func() {})
	if cfg.session {
		opCtx, cancel = reserveForLogout(ctx)
	}
	defer cancel()

	o = &operation{cfg: cfg, c: newClient(opCtx, cfg, rt, d.maxResponseBytes)}
	if cfg.session {
		if err := o.login(); err != nil {
			return err
		}
		defer d.logout(ctx, n, o)
	}
	return fn(o)
}

// reserveForLogout returns a context ending a little before ctx, so the
// logout that follows still runs within ctx's deadline.
func reserveForLogout(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	reserve := min(time.Until(deadline)/4, maxLogoutReserve)
	return context.WithDeadline(ctx, deadline.Add(-reserve))
}

func (o *operation) login() error {
	root, err := o.serviceRoot()
	if err != nil {
		return err
	}
	sessions := root.Links.Sessions.String()
	if sessions == "" {
		return fmt.Errorf("log in: the BMC offers no SessionService; set %s to basic", keyAuthType)
	}
	auth, err := schemas.CreateSession(o.c, sessions, o.cfg.username, o.cfg.password)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	if auth.Token == "" {
		return errors.New("log in: the BMC answered without an X-Auth-Token")
	}
	o.token, o.sessionPath = auth.Token, auth.Session
	o.c.token = auth.Token
	return nil
}

// logout deletes the operation's session under the caller's context, which
// still has the reserved time left. Failures are logged, not returned: the
// operation itself is done, and the BMC expires the session eventually.
func (d *Driver) logout(ctx context.Context, n drivers.Node, o *operation) {
	switch {
	case o.sessionPath == "":
		d.log.Warn("redfish: BMC gave no session location; the session will expire on the BMC", "node", n.Label())
		return
	case ctx.Err() != nil:
		d.log.Warn("redfish: no time left to log out; the session will expire on the BMC", "node", n.Label())
		return
	}
	if err := schemas.DeleteSession(o.c.withContext(ctx), o.sessionPath); err != nil {
		d.log.Warn("redfish: session logout failed", "node", n.Label(), "error", redact(err, o.secrets(n.DriverInfo)).Error())
	}
	o.c.token = ""
}

func (o *operation) serviceRoot() (*serviceRoot, error) {
	if o.root != nil {
		return o.root, nil
	}
	resp, err := o.c.Get(serviceRootPath)
	if err != nil {
		return nil, err
	}
	defer schemas.DeferredCleanupHTTPResponse(resp)
	var root serviceRoot
	if err := json.NewDecoder(resp.Body).Decode(&root); err != nil {
		return nil, badAnswer(serviceRootPath, err)
	}
	o.root = &root
	return o.root, nil
}

// systemPath is the configured system or, when none is, the BMC's only one.
func (o *operation) systemPath() (string, error) {
	if o.cfg.systemPath != "" {
		return o.cfg.systemPath, nil
	}
	root, err := o.serviceRoot()
	if err != nil {
		return "", err
	}
	link := root.Systems.String()
	if link == "" {
		return "", errors.New("the BMC's service root links no Systems collection")
	}
	systems, err := schemas.GetCollection(o.c, link)
	if err != nil {
		return "", badAnswer(link, err)
	}
	switch len(systems.ItemLinks) {
	case 0:
		return "", errors.New("the BMC lists no system")
	case 1:
		o.cfg.systemPath = systems.ItemLinks[0] // cfg is this operation's own copy
		return o.cfg.systemPath, nil
	}
	shown := systems.ItemLinks[:min(len(systems.ItemLinks), 5)]
	return "", &drivers.InfoError{Key: keySystemID, Reason: fmt.Sprintf("required: the BMC has %d systems (%s)", len(systems.ItemLinks), strings.Join(shown, ", "))}
}

func (o *operation) system() (*schemas.ComputerSystem, error) {
	path, err := o.systemPath()
	if err != nil {
		return nil, err
	}
	sys, err := schemas.GetObject[schemas.ComputerSystem](o.c, path)
	if err != nil {
		return nil, badAnswer(path, err)
	}
	return sys, nil
}

// badAnswer names the resource when an error says nothing about the request
// (a decoding error); HTTP and transport errors already do.
func badAnswer(path string, err error) error {
	var se *statusError
	var ue *url.Error
	if errors.As(err, &se) || errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("GET %s: unusable answer: %w", path, err)
}

// secrets lists what must never appear in an error: the password, the
// Basic credentials header value and the session token. o may be nil.
func (o *operation) secrets(info map[string]any) []string {
	var out []string
	if password, _ := info[keyPassword].(string); password != "" {
		username, _ := info[keyUsername].(string)
		out = append(out, password, base64.StdEncoding.EncodeToString([]byte(username+":"+password)))
	}
	if o != nil && o.token != "" {
		out = append(out, o.token)
	}
	return out
}
