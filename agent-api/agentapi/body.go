package agentapi

import (
	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
	"github.com/ferric-metal/ferric/shared/jsonbody"
	"github.com/ferric-metal/ferric/shared/jsonlimit"
	"github.com/ferric-metal/ferric/shared/middleware"
)

// readBody returns the request body, which the route's body reader
// (routes.go) has read within the route's cap.
func readBody(c *gin.Context) []byte { return middleware.Body(c) }

// smallBodyLimits bound checkin and heartbeat documents, which are flat.
var smallBodyLimits = jsonlimit.Limits{MaxDepth: 4, MaxElements: 32}

// decodeSmall reads a checkin or heartbeat body into v: bounded, strict (no
// unknown members), with a precise message for any fault.
func decodeSmall(c *gin.Context, v any) error {
	body := readBody(c)
	if err := jsonlimit.Check(body, smallBodyLimits); err != nil {
		return fault.Wrap(fault.Invalid, err, "Invalid body: %s.", err)
	}
	return jsonbody.DecodeBytes(body, v)
}
