package publicapi

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/ferric-metal/ferric/shared/fault"
)

// listDrivers handles GET /v1/drivers: the enabled drivers and the live
// conductors serving each. All of Ferric's drivers are hardware types
// ("dynamic"); type=classic lists none.
func (a *API) listDrivers(c *gin.Context) {
	if err := allowQuery(c, []string{"type", "detail", "fields"}); err != nil {
		a.fail(c, err)
		return
	}
	kind := c.Query("type")
	if kind != "" && !versionOf(c).AtLeast(vDynamicDrivers) {
		a.fail(c, notAcceptable("Filter type", vDynamicDrivers, versionOf(c)))
		return
	}
	if kind != "" && kind != "dynamic" && kind != "classic" {
		a.fail(c, fault.New(fault.Invalid, "Invalid value for type: %q; use dynamic or classic.", kind))
		return
	}
	detail, fields, err := listShape(c, driverFields, false, vDynamicDrivers, vDriverFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	list, err := a.conductor.ListDriverInfo(c.Request.Context())
	if err != nil {
		a.fail(c, err)
		return
	}
	if kind == "classic" {
		list = nil
	}
	r := newRenderer(c)
	keys := listKeys(detail, fields, driverSummaryFields, "name")
	items := make([]doc, len(list))
	for i := range list {
		items[i] = driverFields.render(&list[i], r, keys)
	}
	renderList(c, "drivers", items, "")
}

// showDriver handles GET /v1/drivers/{driver}.
func (a *API) showDriver(c *gin.Context) {
	if err := allowQuery(c, []string{"fields"}); err != nil {
		a.fail(c, err)
		return
	}
	fields, err := parseFields(c, driverFields, vDriverFields)
	if err != nil {
		a.fail(c, err)
		return
	}
	d, err := a.conductor.GetDriverInfo(c.Request.Context(), c.Param("driver"))
	if err != nil {
		a.fail(c, err)
		return
	}
	writeJSON(c, http.StatusOK, driverFields.render(&d, newRenderer(c), fields))
}

// driverProperties handles GET /v1/drivers/{driver}/properties.
func (a *API) driverProperties(c *gin.Context) {
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	props, err := a.conductor.DriverProperties(c.Param("driver"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, props)
}

// driverRAIDProperties handles GET /v1/drivers/{driver}/raid/logical_disk_properties
// (API 1.12): what a logical disk of a target RAID configuration may give.
func (a *API) driverRAIDProperties(c *gin.Context) {
	if v := versionOf(c); !v.AtLeast(vRAIDConfig) {
		a.fail(c, notAcceptable("RAID logical disk properties", vRAIDConfig, v))
		return
	}
	if err := allowQuery(c); err != nil {
		a.fail(c, err)
		return
	}
	props, err := a.conductor.DriverRAIDProperties(c.Param("driver"))
	if err != nil {
		a.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, props)
}
