package redfishsim

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	serviceRootPath = "/redfish/v1/"
	systemsPath     = "/redfish/v1/Systems"
	managerPath     = "/redfish/v1/Managers/BMC"
	cdPath          = managerPath + "/VirtualMedia/Cd"
	sessionsPath    = "/redfish/v1/SessionService/Sessions"
)

// routes builds the handler: bookkeeping, latency, faults and auth in front
// of a mux of Redfish resources.
func (s *Simulator) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /redfish", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"v1": serviceRootPath})
	})
	mux.HandleFunc("GET /redfish/v1/{$}", s.serveRoot)
	mux.HandleFunc("GET "+systemsPath, s.serveSystems)
	mux.HandleFunc("GET "+systemsPath+"/{id}", s.serveSystem)
	mux.HandleFunc("PATCH "+systemsPath+"/{id}", s.patchSystem)
	mux.HandleFunc("POST "+systemsPath+"/{id}/Actions/ComputerSystem.Reset", s.resetSystem)
	mux.HandleFunc("GET "+systemsPath+"/{id}/Bios", s.serveBios)
	mux.HandleFunc("GET /redfish/v1/Managers", s.serveManagers)
	mux.HandleFunc("GET "+managerPath, s.serveManager)
	mux.HandleFunc("GET "+managerPath+"/VirtualMedia", s.serveMediaCollection)
	mux.HandleFunc("GET "+cdPath, s.serveCD)
	mux.HandleFunc("POST "+cdPath+"/Actions/VirtualMedia.EjectMedia", s.ejectCD)
	mux.HandleFunc("POST "+cdPath+"/Actions/VirtualMedia.InsertMedia", s.insertCD)
	if s.opts.SessionService {
		mux.HandleFunc("GET /redfish/v1/SessionService", s.serveSessionService)
		mux.HandleFunc("GET "+sessionsPath, s.serveSessions)
		mux.HandleFunc("POST "+sessionsPath, s.login)
		mux.HandleFunc("GET "+sessionsPath+"/{id}", s.serveSession)
		mux.HandleFunc("DELETE "+sessionsPath+"/{id}", s.logout)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := normalizePath(r.URL.Path)
		s.mu.Lock()
		s.requests++
		s.byRoute[r.Method+" "+path]++
		fault := s.takeFault(r.Method, path)
		latency := s.latency
		s.mu.Unlock()

		if latency > 0 && !s.wait(r, latency) {
			dropConnection(w)
			return
		}
		if fault != nil {
			s.serveFault(w, r, fault)
			return
		}
		if !s.isPublic(r.Method, path) && !s.authorized(r) {
			s.mu.Lock()
			s.unauthed++
			s.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Basic realm="Ferric Redfish Simulator"`)
			writeError(w, http.StatusUnauthorized, "NoValidSession", "There is no valid session established with the implementation.")
			return
		}
		r2 := r.Clone(r.Context())
		r2.URL.Path = path
		r2.URL.RawPath = ""
		mux.ServeHTTP(w, r2)
	})
}

// wait sleeps d unless the client gives up or the simulator closes first.
func (s *Simulator) wait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	case <-s.closed:
		return false
	}
}

func (s *Simulator) serveFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	switch f.Kind {
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		dropConnection(w)
	case FaultGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"@odata.id": "/redfish/v1/", "PowerState": "On", <html>garbage`))
	case FaultDrop:
		dropConnection(w)
	default:
		w.Header().Set("Retry-After", "1")
		writeError(w, f.Status, "InternalError", "Injected fault: "+http.StatusText(f.Status)+".")
	}
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil { // HTTP/2 or a recorder: the nearest thing is an error status
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	_ = conn.Close()
}

func (s *Simulator) isPublic(method, path string) bool {
	switch {
	case path == "/redfish" || path == serviceRootPath:
		return true
	case method == http.MethodPost && path == sessionsPath && s.opts.SessionService:
		return true
	}
	return false
}

func (s *Simulator) authorized(r *http.Request) bool {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		_, ok := s.sessions[tok]
		return ok
	}
	user, pass, ok := r.BasicAuth()
	return ok && s.credentialsMatch(user, pass)
}

func (s *Simulator) credentialsMatch(user, pass string) bool {
	u := subtle.ConstantTimeCompare([]byte(user), []byte(s.opts.Username))
	p := subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.Password))
	return u&p == 1
}

func (s *Simulator) serveRoot(w http.ResponseWriter, _ *http.Request) {
	root := map[string]any{
		"@odata.id":      serviceRootPath,
		"@odata.type":    "#ServiceRoot.v1_15_0.ServiceRoot",
		"Id":             "RootService",
		"Name":           "Ferric Redfish Simulator",
		"RedfishVersion": "1.15.0",
		"UUID":           "8f0b5c2e-0000-4000-8000-000000000000",
		"Systems":        link(systemsPath),
		"Managers":       link("/redfish/v1/Managers"),
	}
	if s.opts.SessionService {
		root["SessionService"] = link("/redfish/v1/SessionService")
		root["Links"] = map[string]any{"Sessions": link(sessionsPath)}
	}
	writeJSON(w, http.StatusOK, root)
}

func (s *Simulator) serveSystems(w http.ResponseWriter, _ *http.Request) {
	members := make([]any, 0, len(s.systemIDs))
	for _, id := range s.systemIDs {
		members = append(members, link(systemsPath+"/"+id))
	}
	writeJSON(w, http.StatusOK, collection(systemsPath, "#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", members))
}

// lookupSystem finds the system named in the path, answering 404 itself
// when there is none. Called with s.mu held.
func (s *Simulator) lookupSystem(w http.ResponseWriter, r *http.Request) *system {
	sys, ok := s.systems[r.PathValue("id")]
	if !ok {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The requested resource of type ComputerSystem named '"+r.PathValue("id")+"' was not found.")
		return nil
	}
	s.applyDue(sys, time.Now())
	return sys
}

func (s *Simulator) serveSystem(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sys := s.lookupSystem(w, r)
	if sys == nil {
		s.mu.Unlock()
		return
	}
	self := systemsPath + "/" + sys.id
	boot := map[string]any{
		"BootSourceOverrideTarget":  sys.boot.Target,
		"BootSourceOverrideEnabled": sys.boot.Enabled,
		"BootSourceOverrideMode":    sys.boot.Mode,
	}
	reset := map[string]any{"target": self + "/Actions/ComputerSystem.Reset"}
	if !s.opts.OmitAllowableValues {
		boot["BootSourceOverrideTarget@Redfish.AllowableValues"] = slices.Clone(s.bootTargets)
		reset["ResetType@Redfish.AllowableValues"] = slices.Clone(s.resetTypes)
	}
	body := map[string]any{
		"@odata.id":    self,
		"@odata.type":  "#ComputerSystem.v1_20_0.ComputerSystem",
		"Id":           sys.id,
		"Name":         "Simulated System " + sys.id,
		"SystemType":   "Physical",
		"Manufacturer": "Ferric",
		"Model":        "Redfish Simulator",
		"SerialNumber": "SIM-" + sys.id,
		"UUID":         "8f0b5c2e-0000-4000-8000-" + leftPad(sys.id, 12),
		"PowerState":   s.reportedPower(sys, time.Now()),
		"Status":       map[string]any{"State": "Enabled", "Health": "OK"},
		"Boot":         boot,
		"Bios":         link(self + "/Bios"),
		"Links":        map[string]any{"ManagedBy": []any{link(managerPath)}},
		"Actions":      map[string]any{"#ComputerSystem.Reset": reset},
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

var (
	overrideEnabledValues = []string{"Disabled", "Once", "Continuous"}
	overrideModeValues    = []string{"UEFI", "Legacy"}
)

func (s *Simulator) patchSystem(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if !decodeBody(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sys := s.lookupSystem(w, r)
	if sys == nil {
		return
	}
	next := sys.boot
	for key, value := range body {
		if strings.HasPrefix(key, "@") {
			continue
		}
		if key != "Boot" {
			writeError(w, http.StatusBadRequest, "PropertyNotWritable", "The property "+key+" is a read only property and cannot be assigned a value.")
			return
		}
		boot, ok := value.(map[string]any)
		if !ok {
			writeError(w, http.StatusBadRequest, "PropertyValueTypeError", "The value for the property Boot is of a different type than the property can accept.")
			return
		}
		for bk, bv := range boot {
			str, isString := bv.(string)
			var field *string
			var allowed []string
			switch bk {
			case "BootSourceOverrideTarget":
				field, allowed = &next.Target, s.bootTargets
			case "BootSourceOverrideEnabled":
				field, allowed = &next.Enabled, overrideEnabledValues
			case "BootSourceOverrideMode":
				field, allowed = &next.Mode, overrideModeValues
			default:
				writeError(w, http.StatusBadRequest, "PropertyUnknown", "The property "+bk+" is not in the list of valid properties for the resource.")
				return
			}
			if !isString || !slices.Contains(allowed, str) {
				writeError(w, http.StatusBadRequest, "PropertyValueNotInList", "The value "+jsonString(bv)+" for the property "+bk+" is not in the list of acceptable values.")
				return
			}
			*field = str
		}
	}
	sys.boot = next
	sys.lastPatch = body
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) resetSystem(w http.ResponseWriter, r *http.Request) {
	var body struct{ ResetType *string }
	if !decodeBody(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sys := s.lookupSystem(w, r)
	if sys == nil {
		return
	}
	if body.ResetType == nil {
		writeError(w, http.StatusBadRequest, "ActionParameterMissing", "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.")
		return
	}
	rt := *body.ResetType
	if !slices.Contains(s.resetTypes, rt) {
		writeError(w, http.StatusBadRequest, "ActionParameterNotSupported", "The parameter ResetType with value "+strconv.Quote(rt)+" is not supported by this system.")
		return
	}
	if !slices.Contains(implementedResetTypes, rt) {
		writeError(w, http.StatusNotImplemented, "ActionNotSupported", "The action ComputerSystem.Reset with ResetType "+strconv.Quote(rt)+" is not implemented by the simulator.")
		return
	}
	on := sys.power == "On"
	graceful := !s.opts.IgnoreGraceful
	switch rt {
	case "On", "ForceOn":
		if !on {
			s.schedulePower(sys, "On", false)
		}
	case "ForceOff":
		if on {
			s.schedulePower(sys, "Off", false)
		}
	case "GracefulShutdown":
		if on && graceful {
			s.schedulePower(sys, "Off", false)
		}
	case "GracefulRestart":
		if on && graceful {
			s.schedulePower(sys, "On", true)
		}
	case "ForceRestart", "PowerCycle":
		s.schedulePower(sys, "On", on)
	case "PushPowerButton":
		if on {
			s.schedulePower(sys, "Off", false)
		} else {
			s.schedulePower(sys, "On", false)
		}
	case "Nmi": // no power change
	}
	sys.resets = append(sys.resets, rt)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) serveBios(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	sys := s.lookupSystem(w, r)
	if sys == nil {
		s.mu.Unlock()
		return
	}
	self := systemsPath + "/" + sys.id + "/Bios"
	body := map[string]any{
		"@odata.id":         self,
		"@odata.type":       "#Bios.v1_2_0.Bios",
		"Id":                "BIOS",
		"Name":              "BIOS Configuration Current Settings",
		"AttributeRegistry": "FerricSimRegistry.v1_0_0",
		"Attributes":        maps.Clone(sys.bios),
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

func (s *Simulator) serveManagers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, collection("/redfish/v1/Managers", "#ManagerCollection.ManagerCollection", "Manager Collection", []any{link(managerPath)}))
}

func (s *Simulator) serveManager(w http.ResponseWriter, _ *http.Request) {
	servers := make([]any, 0, len(s.systemIDs))
	for _, id := range s.systemIDs {
		servers = append(servers, link(systemsPath+"/"+id))
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id":    managerPath,
		"@odata.type":  "#Manager.v1_19_0.Manager",
		"Id":           "BMC",
		"Name":         "Simulated BMC",
		"ManagerType":  "BMC",
		"Status":       map[string]any{"State": "Enabled", "Health": "OK"},
		"VirtualMedia": link(managerPath + "/VirtualMedia"),
		"Links":        map[string]any{"ManagerForServers": servers},
	})
}

func (s *Simulator) serveMediaCollection(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, collection(managerPath+"/VirtualMedia", "#VirtualMediaCollection.VirtualMediaCollection", "Virtual Media Collection", []any{link(cdPath)}))
}

func (s *Simulator) serveCD(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	image, inserted := s.media.image, s.media.inserted
	s.mu.Unlock()
	var imageValue any // null when empty, as BMCs show it
	if image != "" {
		imageValue = image
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id":      cdPath,
		"@odata.type":    "#VirtualMedia.v1_6_0.VirtualMedia",
		"Id":             "Cd",
		"Name":           "Virtual CD",
		"MediaTypes":     []string{"CD", "DVD"},
		"Image":          imageValue,
		"Inserted":       inserted,
		"WriteProtected": true,
		"ConnectedVia":   "URI",
		"Actions": map[string]any{
			"#VirtualMedia.EjectMedia":  map[string]any{"target": cdPath + "/Actions/VirtualMedia.EjectMedia"},
			"#VirtualMedia.InsertMedia": map[string]any{"target": cdPath + "/Actions/VirtualMedia.InsertMedia"},
		},
	})
}

func (s *Simulator) ejectCD(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.media.image, s.media.inserted = "", false
	s.media.ejects++
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) insertCD(w http.ResponseWriter, r *http.Request) {
	var body struct{ Image string }
	if err := readBody(w, r, &body); err != nil || body.Image == "" {
		writeError(w, http.StatusBadRequest, "ActionParameterMissing", "The action VirtualMedia.InsertMedia requires the parameter Image to be present in the request body.")
		return
	}
	s.InsertVirtualMedia(body.Image)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) serveSessionService(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id":      "/redfish/v1/SessionService",
		"@odata.type":    "#SessionService.v1_1_8.SessionService",
		"Id":             "SessionService",
		"Name":           "Session Service",
		"ServiceEnabled": true,
		"SessionTimeout": 1800,
		"Sessions":       link(sessionsPath),
	})
}

func (s *Simulator) serveSessions(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ids := slices.Sorted(maps.Values(s.sessions))
	s.mu.Unlock()
	members := make([]any, 0, len(ids))
	for _, id := range ids {
		members = append(members, link(sessionsPath+"/"+id))
	}
	writeJSON(w, http.StatusOK, collection(sessionsPath, "#SessionCollection.SessionCollection", "Session Collection", members))
}

func (s *Simulator) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if !decodeBody(w, r, &body) {
		return
	}
	if !s.credentialsMatch(body.UserName, body.Password) {
		s.mu.Lock()
		s.unauthed++
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "InsufficientPrivilege", "Invalid user name or password.")
		return
	}
	s.mu.Lock()
	if len(s.sessions) >= s.opts.MaxSessions {
		s.mu.Unlock()
		writeError(w, http.StatusServiceUnavailable, "SessionLimitExceeded", "The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.")
		return
	}
	s.nextSession++
	id := strconv.Itoa(s.nextSession)
	token := rand.Text()
	s.sessions[token] = id
	s.mu.Unlock()

	self := sessionsPath + "/" + id
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", self)
	writeJSON(w, http.StatusCreated, map[string]any{
		"@odata.id": self, "@odata.type": "#Session.v1_7_0.Session",
		"Id": id, "Name": "User Session", "UserName": body.UserName,
	})
}

func (s *Simulator) serveSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	found := slices.Contains(slices.Collect(maps.Values(s.sessions)), id)
	s.mu.Unlock()
	if !found {
		writeError(w, http.StatusNotFound, "ResourceNotFound", "The requested session was not found.")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"@odata.id": sessionsPath + "/" + id, "@odata.type": "#Session.v1_7_0.Session",
		"Id": id, "Name": "User Session", "UserName": s.opts.Username,
	})
}

func (s *Simulator) logout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for tok, sid := range s.sessions {
		if sid == id {
			delete(s.sessions, tok)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "ResourceNotFound", "The requested session was not found.")
}

// normalizePath drops a trailing slash, except on the service root, which
// Redfish names with one.
func normalizePath(p string) string {
	if p == "/redfish/v1" || p == serviceRootPath {
		return serviceRootPath
	}
	if trimmed := strings.TrimRight(p, "/"); trimmed != "" {
		return trimmed
	}
	return "/"
}

func containsPath(path, part string) bool { return strings.Contains(path, part) }

func link(path string) map[string]any { return map[string]any{"@odata.id": path} }

func collection(self, odataType, name string, members []any) map[string]any {
	return map[string]any{
		"@odata.id":           self,
		"@odata.type":         odataType,
		"Name":                name,
		"Members":             members,
		"Members@odata.count": len(members),
	}
}

func leftPad(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat("0", width-len(s)) + s
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "?"
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("OData-Version", "4.0")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers a Redfish error: a general message plus the specific
// one in @Message.ExtendedInfo, as BMCs do.
func writeError(w http.ResponseWriter, status int, messageID, message string) {
	writeJSON(w, status, map[string]any{
		"error": map[string]any{
			"code":    "Base.1.16.GeneralError",
			"message": "A general error has occurred. See ExtendedInfo for more information.",
			"@Message.ExtendedInfo": []any{map[string]any{
				"@odata.type": "#Message.v1_1_1.Message",
				"MessageId":   "Base.1.16." + messageID,
				"Message":     message,
				"Severity":    "Warning",
			}},
		},
	})
}

// readBody decodes a request body of at most 64 KiB into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) error {
	return json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v)
}

// decodeBody is readBody answering a bad body as a BMC does; it reports
// whether the body was decoded.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := readBody(w, r, v); err != nil {
		writeError(w, http.StatusBadRequest, "MalformedJSON", "The request body submitted was malformed JSON.")
		return false
	}
	return true
}
