package publicapi

import (
	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/conductor"
)

// createChassisRequest is the body of POST /v1/chassis.
type createChassisRequest struct {
	UUID        string         `json:"uuid"`
	Description *string        `json:"description"`
	Extra       map[string]any `json:"extra"`
}

// createChassis handles POST /v1/chassis.
func (a *API) createChassis(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	var req createChassisRequest
	if err := decodeBody(c, &req); err != nil {
		a.fail(c, err)
		return
	}
	ch, err := a.conductor.CreateChassis(c.Request.Context(), conductor.ChassisSpec{
		UUID: req.UUID, Description: req.Description, Extra: req.Extra,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	created(c, chassisFields, "chassis", ch.UUID, ch)
}

// showChassis handles GET /v1/chassis/{chassis}.
func (a *API) showChassis(c *gin.Context) {
	showOne(a, c, chassisFields, "chassis", a.conductor.GetChassis)
}

// listChassis handles GET /v1/chassis.
func (a *API) listChassis(c *gin.Context) { a.renderChassis(c, false) }

// listChassisDetail handles GET /v1/chassis/detail.
func (a *API) listChassisDetail(c *gin.Context) { a.renderChassis(c, true) }

func (a *API) renderChassis(c *gin.Context, detailPath bool) {
	detail, fields, p, err := listRequest(c, chassisFields, detailPath, nil)
	if err != nil {
		a.fail(c, err)
		return
	}
	list, err := a.conductor.ListChassis(c.Request.Context(), conductor.ChassisFilter{
		Limit: p.limit, MarkerUUID: p.marker, SortKey: p.sortKey, SortDesc: p.desc,
	})
	if err != nil {
		a.fail(c, err)
		return
	}
	renderPage(c, chassisFields, "chassis", list, listKeys(detail, fields, chassisSummaryFields, "uuid"), p, func(x *chassisRow) string { return x.UUID })
}

// updateChassis handles PATCH /v1/chassis/{chassis}.
func (a *API) updateChassis(c *gin.Context) {
	patchOne(a, c, chassisFields, "chassis", nil, nil, a.conductor.UpdateChassis)
}

// deleteChassis handles DELETE /v1/chassis/{chassis}.
func (a *API) deleteChassis(c *gin.Context) {
	deleteOne(a, c, "chassis", a.conductor.DeleteChassis)
}
