package extproc

import (
	"net/url"
	"regexp"
	"strings"

	"github.com/go-logr/logr"

	"github.com/elasti-mesh/elasti/api/v1alpha1"
)

// probeRule is a compiled ProbeResponseRule. It is immutable once built.
type probeRule struct {
	method    string
	pathType  v1alpha1.PathMatchType
	path      string
	pathRegex *regexp.Regexp
	headers   []v1alpha1.NameValue
	query     []v1alpha1.NameValue
	status    int32
	body      string
}

// compileProbeRules compiles rules in order. A rule whose regular expression
// does not compile is dropped and logged: matching nothing is safer than
// matching everything, and the API server accepts any string as an expression.
func compileProbeRules(log logr.Logger, rules []v1alpha1.ProbeResponseRule) []probeRule {
	out := make([]probeRule, 0, len(rules))
	for i, r := range rules {
		pr := probeRule{
			method:   r.Method,
			pathType: v1alpha1.PathMatchPrefix,
			path:     "/",
			headers:  r.Headers,
			query:    r.QueryParams,
			status:   r.Response.Status,
			body:     r.Response.Body,
		}
		if r.Path != nil {
			pr.path = r.Path.Value
			if r.Path.Type != "" {
				pr.pathType = r.Path.Type
			}
		}
		if pr.pathType == v1alpha1.PathMatchRegularExpression {
			re, err := regexp.Compile("^(?:" + pr.path + ")$")
			if err != nil {
				log.Error(err, "Dropping probe rule with an invalid path expression",
					"rule", i, "expression", pr.path)
				continue
			}
			pr.pathRegex = re
		}
		out = append(out, pr)
	}
	return out
}

// matches reports whether every condition of the rule holds for req.
func (p *probeRule) matches(req *Request) bool {
	if p.method != "" && p.method != req.Method {
		return false
	}
	if !p.matchPath(req.Path) {
		return false
	}
	for _, want := range p.headers {
		if got, ok := req.Header(want.Name); !ok || got != want.Value {
			return false
		}
	}
	if len(p.query) == 0 {
		return true
	}

	// A malformed query string still yields the pairs that parsed.
	values, _ := url.ParseQuery(req.RawQuery)
	for _, want := range p.query {
		if !values.Has(want.Name) || values.Get(want.Name) != want.Value {
			return false
		}
	}
	return true
}

// matchPath compares the request path with the rule's. A prefix matches whole
// path elements: /api matches /api and /api/v1 but not /apis.
func (p *probeRule) matchPath(path string) bool {
	switch p.pathType {
	case v1alpha1.PathMatchExact:
		return path == p.path
	case v1alpha1.PathMatchRegularExpression:
		return p.pathRegex != nil && p.pathRegex.MatchString(path)
	default:
		prefix := strings.TrimSuffix(p.path, "/")
		return prefix == "" || path == prefix || strings.HasPrefix(path, prefix+"/")
	}
}
