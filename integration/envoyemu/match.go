package envoyemu

import (
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"

	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// requestView is what route matching sees of a request. Headers are keyed by
// lower-case name; pseudo-headers are separate fields.
type requestView struct {
	method    string
	path      string // with the query string
	authority string
	scheme    string
	headers   http.Header
}

// selectRoute returns the first route that matches, as Envoy does.
func selectRoute(routes []*route, req requestView) *route {
	for _, r := range routes {
		if len(r.matches) == 0 {
			return r
		}
		for _, m := range r.matches {
			if matchRequest(m, req) {
				return r
			}
		}
	}
	return nil
}

// matchRequest applies one match clause: every condition it sets must hold.
func matchRequest(m *networkingv1alpha3.HTTPMatchRequest, req requestView) bool {
	path, query, _ := strings.Cut(req.path, "?")
	if m.Uri != nil && !matchString(m.Uri, path, m.IgnoreUriCase) {
		return false
	}
	if m.Method != nil && !matchString(m.Method, req.method, false) {
		return false
	}
	if m.Scheme != nil && !matchString(m.Scheme, req.scheme, false) {
		return false
	}
	if m.Authority != nil && !matchString(m.Authority, req.authority, false) {
		return false
	}
	for name, sm := range m.Headers {
		values, ok := req.headers[http.CanonicalHeaderKey(name)]
		if !ok || !matchString(sm, strings.Join(values, ","), false) {
			return false
		}
	}
	for name, sm := range m.WithoutHeaders {
		values, ok := req.headers[http.CanonicalHeaderKey(name)]
		if ok && matchString(sm, strings.Join(values, ","), false) {
			return false
		}
	}
	if len(m.QueryParams) > 0 {
		params := parseQuery(query)
		for name, sm := range m.QueryParams {
			value, ok := params[name]
			if !ok || !matchString(sm, value, false) {
				return false
			}
		}
	}
	return true
}

// parseQuery keeps the first value of each parameter, without unescaping, as
// Envoy's query parameter matcher does.
func parseQuery(query string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if _, seen := out[k]; !seen {
			out[k] = v
		}
	}
	return out
}

// matchString applies an Istio StringMatch. An empty match (no type set)
// matches any present value, as Istio treats it.
func matchString(sm *networkingv1alpha3.StringMatch, value string, ignoreCase bool) bool {
	if ignoreCase {
		value = strings.ToLower(value)
	}
	switch t := sm.MatchType.(type) {
	case *networkingv1alpha3.StringMatch_Exact:
		want := t.Exact
		if ignoreCase {
			want = strings.ToLower(want)
		}
		return value == want
	case *networkingv1alpha3.StringMatch_Prefix:
		want := t.Prefix
		if ignoreCase {
			want = strings.ToLower(want)
		}
		return strings.HasPrefix(value, want)
	case *networkingv1alpha3.StringMatch_Regex:
		re, err := compiledRegex(t.Regex)
		return err == nil && re.MatchString(value)
	}
	return true
}

// regexes caches compiled expressions, anchored for a full match as Envoy's
// safe_regex requires.
var regexes sync.Map // string -> *regexp.Regexp

func compiledRegex(expr string) (*regexp.Regexp, error) {
	if re, ok := regexes.Load(expr); ok {
		return re.(*regexp.Regexp), nil
	}
	re, err := regexp.Compile("^(?:" + expr + ")$")
	if err != nil {
		return nil, err
	}
	regexes.Store(expr, re)
	return re, nil
}

// pickDestination chooses among weighted destinations.
func pickDestination(dests []destination) (destination, bool) {
	var total int32
	for _, d := range dests {
		total += d.weight
	}
	if len(dests) == 0 || total <= 0 {
		return destination{}, false
	}
	n := rand.Int32N(total)
	for _, d := range dests {
		if n < d.weight {
			return d, true
		}
		n -= d.weight
	}
	return dests[len(dests)-1], true
}
