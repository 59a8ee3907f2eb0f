package redact

import "net/url"

// URL is raw as logs and error messages may show it: without userinfo,
// query or fragment, any of which may carry a credential (a password, a
// Swift temporary URL's signature, a token). A query is shown as "?...".
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	shown := url.URL{Scheme: u.Scheme, Opaque: u.Opaque, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	s := shown.String()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?..."
	}
	return s
}
