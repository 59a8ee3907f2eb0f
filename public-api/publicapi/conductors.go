package publicapi

import (
	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
	"github.com/ferric-metal/ferric/shared/fault"
)

// requireConductorsAPI answers 404 below API 1.49, where Ironic has no
// conductors endpoint.
func (a *API) requireConductorsAPI(c *gin.Context) bool {
	if !versionOf(c).AtLeast(vConductors) {
		a.fail(c, fault.New(fault.NotFound, "The resource could not be found: /v1/conductors needs API version 1.%d or later.", vConductors))
		return false
	}
	return true
}

// listConductors handles GET /v1/conductors: every registered conductor,
// with alive true when it heartbeat within the last 60 s.
func (a *API) listConductors(c *gin.Context) {
	if !a.requireConductorsAPI(c) {
		return
	}
	detail, fields, p, err := listRequest(c, conductorFields, false, nil)
	if err != nil {
		a.fail(c, err)
		return
	}
	list, err := a.conductor.ListConductorInfo(c.Request.Context(), conductor.ConductorFilter{
		Limit: p.limit, MarkerName: p.marker, SortKey: p.sortKey, SortDesc: p.desc,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	renderPage(c, conductorFields, "conductors", list, listKeys(detail, fields, conductorSummaryFields, "hostname"), p, func(x *conductorRow) string { return x.Name }, "conductor_links")
}

// showConductor handles GET /v1/conductors/{hostname}.
func (a *API) showConductor(c *gin.Context) {
	if !a.requireConductorsAPI(c) {
		return
	}
	showOne(a, c, conductorFields, "hostname", a.conductor.GetConductorInfo)
}
